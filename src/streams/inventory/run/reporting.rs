//! The signals step of a full inventory run: read the run's snapshot file back (only the
//! kinds and fields the signals look at, project keys a slice at a time) and emit the
//! conditions that appeared or changed since the last run.

use super::*;

impl Run<'_> {
    /// Evaluates the signals over this run's snapshot file — the kinds they need, read back
    /// with only the fields they look at, the project keys a slice at a time — and emits the
    /// conditions that appeared or changed.
    pub(super) async fn signals(
        &self,
        progress: &RunProgress,
        project_names: &HashMap<String, String>,
        out: &Emitter<InventoryState>,
    ) -> Result<(Signals, u64), CycleError> {
        let complete = |k: Kind| progress.kinds.get(k.name()).is_some_and(Tally::complete);
        let mut lists: BTreeMap<Kind, Vec<Item>> = [Kind::User, Kind::Invite, Kind::AdminApiKey, Kind::ExternalStorage]
            .into_iter()
            .filter(|k| complete(*k))
            .map(|k| (k, Vec::new()))
            .collect();
        let keys_complete = complete(Kind::ProjectApiKey);
        // The organization-wide signals need of the project keys only those without expiry.
        let mut unexpiring = Vec::new();
        let mut chunk = Vec::new();
        let mut reporting = Reporting {
            progress,
            project_names,
            out,
            report: Report::default(),
        };
        let mut first = true;
        if let Some(mut r) = self
            .files
            .reader(progress.generation)
            .map_err(|e| state_error("read", e))?
        {
            // The users and admin keys precede the project keys in the file: the lists are
            // written in the run's order, organization-level lists first.
            while let Some((_, rec)) = store::next(&mut r, u64::MAX).map_err(|e| state_error("read", e))? {
                let Some(kind) = Kind::from_name(&rec.kind) else {
                    continue;
                };
                let keep = kind == Kind::ProjectApiKey && keys_complete || lists.contains_key(&kind);
                if !keep {
                    continue;
                }
                let fields = rec
                    .fields
                    .iter()
                    .filter(|(name, _)| signals::reads(kind, name, &rec.fields))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let item = Item {
                    id: rec.id,
                    scope: rec.scope,
                    fields,
                    raw: Value::Null,
                };
                if kind != Kind::ProjectApiKey {
                    lists.entry(kind).or_default().push(item);
                    continue;
                }
                if !item.fields.contains_key("expires_at") {
                    unexpiring.push(Item {
                        fields: diff::Fields::new(),
                        ..item.clone()
                    });
                }
                chunk.push(item);
                if chunk.len() == KEY_SLICE {
                    let slice = keys_complete.then_some(chunk.as_slice());
                    self.key_signals(&lists, slice, first, &mut reporting).await?;
                    first = false;
                    chunk.clear();
                }
            }
        }
        let slice = keys_complete.then_some(chunk.as_slice());
        self.key_signals(&lists, slice, first, &mut reporting).await?;
        drop(chunk);

        let mut storage_before = KindSnapshot::default();
        if let Some(mut r) = self
            .files
            .reader(progress.generation - 1)
            .map_err(|e| state_error("read", e))?
        {
            while let Some((_, rec)) = store::next(&mut r, u64::MAX).map_err(|e| state_error("read", e))? {
                if rec.kind == Kind::ExternalStorage.name() {
                    storage_before.objects.insert(rec.key(), rec.stored());
                }
            }
        }
        if let Some(keys) = lists.get(&Kind::AdminApiKey) {
            let expiries: Vec<(String, i64)> = keys
                .iter()
                .filter_map(|k| Some((k.id.clone(), k.fields.get("expires_at")?.as_i64()?)))
                .collect();
            self.metrics.set_credential_expiries(&expiries);
        }
        let inputs = signals::Inputs {
            users: lists.get(&Kind::User).map(Vec::as_slice),
            invites: lists.get(&Kind::Invite).map(Vec::as_slice),
            project_keys: keys_complete.then_some(unexpiring.as_slice()),
            admin_keys: lists.get(&Kind::AdminApiKey).map(Vec::as_slice),
            external_storage: lists.get(&Kind::ExternalStorage).map(Vec::as_slice),
            external_storage_before: Some(&storage_before),
        };
        let holding = signals::evaluate_org(&inputs, progress.at.timestamp());
        self.report(holding, &mut reporting).await?;
        // Unevaluable signals keep what was reported, so nothing is repeated once they are
        // evaluable again.
        let Report { mut next, emitted } = reporting.report;
        for (name, reported) in self.signals.iter() {
            if !next.contains_key(name) {
                next.insert(name.clone(), reported.clone());
            }
        }
        Ok((next, emitted))
    }

    /// The key signals of one slice of the project keys (`None`: they were not listed
    /// completely); the admin keys go with the first slice.
    async fn key_signals(
        &self,
        lists: &BTreeMap<Kind, Vec<Item>>,
        slice: Option<&[Item]>,
        first: bool,
        reporting: &mut Reporting<'_>,
    ) -> Result<(), CycleError> {
        let admin = lists
            .get(&Kind::AdminApiKey)
            .map(|a| if first { a.as_slice() } else { &[] });
        let inputs = signals::Inputs {
            users: lists.get(&Kind::User).map(Vec::as_slice),
            project_keys: slice,
            admin_keys: admin,
            ..signals::Inputs::default()
        };
        let now = reporting.progress.at.timestamp();
        let holding = signals::evaluate_keys(&inputs, now, self.settings.stale_key_days);
        self.report(holding, reporting).await
    }

    /// Emits the conditions of `holding` that were not reported as they are, and records what
    /// is reported now. A name whose inputs are incomplete (`None`) is left as it was.
    async fn report(
        &self,
        holding: BTreeMap<&'static str, Option<Vec<signals::Signal>>>,
        reporting: &mut Reporting<'_>,
    ) -> Result<(), CycleError> {
        let Reporting {
            progress,
            project_names,
            out,
            report,
        } = reporting;
        for (name, holding) in holding {
            let Some(holding) = holding else { continue };
            let reported = self.signals.get(name);
            let now_reported = report.next.entry(name.to_string()).or_default();
            for signal in holding {
                let hash = signal.condition_hash();
                if reported.and_then(|r| r.get(&signal.subject)) != Some(&hash) {
                    let mut event = events::inventory_signal(&signal, progress.generation, self.ctx, progress.at);
                    if let Some(project) = event.project.as_mut() {
                        project.name = project.id.as_ref().and_then(|id| project_names.get(id)).cloned();
                    }
                    report.emitted += 1;
                    out.emit(event).await?;
                }
                now_reported.insert(signal.subject, hash);
            }
        }
        Ok(())
    }
}

/// How many project keys the key signals look at a time: bounds the signals held at once.
const KEY_SLICE: usize = 1000;

/// The signals reported by this run so far.
#[derive(Default)]
struct Report {
    next: Signals,
    emitted: u64,
}

/// What reporting signals needs: the run, where events go, what was reported so far.
struct Reporting<'a> {
    progress: &'a RunProgress,
    project_names: &'a HashMap<String, String>,
    out: &'a Emitter<InventoryState>,
    report: Report,
}

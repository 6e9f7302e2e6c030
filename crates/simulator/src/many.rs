//! Several simulated organizations at once ([`start_orgs`]): one simulator each, with its
//! own listener, seed, ids, keys and history, so a daemon with `[[orgs]]` can be pointed at
//! each through the block's own `base_url`. The first one's receiver is the sink they share.

use std::future::Future;
use std::io::Write;

use super::config::SimConfig;
use super::server::{Simulator, start};

/// Starts `orgs` simulators seeded `cfg.seed`, `cfg.seed + 1`, …; on a fixed port `p` they
/// listen on `p`, `p + 1`, …, on port 0 each picks a free one.
pub async fn start_orgs(cfg: SimConfig, orgs: usize) -> std::io::Result<Vec<Simulator>> {
    let mut sims = Vec::with_capacity(orgs);
    for n in 0..orgs.max(1) {
        let step = u16::try_from(n).map_err(|_| std::io::Error::other("too many organizations"))?;
        let mut one = cfg.clone();
        one.seed = cfg.seed.wrapping_add(n as u64);
        if cfg.listen.port() != 0 {
            one.listen.set_port(cfg.listen.port().saturating_add(step));
        }
        // Keys given for one organization would make every organization's the same.
        if n > 0 {
            one.admin_key = None;
            one.compliance_key = None;
        }
        sims.push(start(one).await?);
    }
    Ok(sims)
}

/// `[[orgs]]` blocks pointing a daemon at `sims`, keys inline (simulator keys, made to be
/// pasted into a test configuration).
pub fn orgs_toml(sims: &[Simulator]) -> String {
    let mut out = String::new();
    for sim in sims {
        out.push_str(&format!(
            "[[orgs]]\norganization_id = \"{org}\"\nadmin_key = \"{ak}\"\nbase_url = \"{base}\"\n\
             compliance_principal_id = \"{ws}\"\ncompliance_api_key = \"{ck}\"\ncompliance_base_url = \"{cbase}\"\n\n",
            org = sim.org_id(),
            ak = sim.admin_key(),
            base = sim.admin_base_url(),
            ws = sim.workspace_id(),
            ck = sim.compliance_key(),
            cbase = sim.compliance_base_url(),
        ));
    }
    out
}

/// The `simulate --orgs N` command: start them, print each banner and the `[[orgs]]`
/// blocks, serve until `shutdown` resolves.
pub async fn serve_orgs_until(cfg: SimConfig, orgs: usize, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let sims = start_orgs(cfg, orgs).await?;
    {
        let mut out = std::io::stdout().lock();
        for sim in &sims {
            out.write_all(sim.banner().as_bytes())?;
        }
        if sims.len() > 1 {
            out.write_all(
                format!(
                    "\n# {} organizations; point sink.url at {} and add:\n\n{}",
                    sims.len(),
                    sims[0].receiver_url(),
                    orgs_toml(&sims)
                )
                .as_bytes(),
            )?;
        }
        out.flush()?;
    }
    shutdown.await;
    for sim in sims {
        sim.shutdown().await;
    }
    Ok(())
}

//! Tests of the rule file format: what compiles, what is refused, and that every error names
//! the rule id and the field.

use super::*;

fn build_file(text: &str) -> Result<RuleSet, RuleSetError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, text).expect("write");
    RuleSet::build(&Inputs {
        rules_file: Some(&path),
        ..Inputs::default()
    })
}

fn rule_error(text: &str) -> RuleError {
    match build_file(text) {
        Err(RuleSetError::Rule(e)) => e,
        other => panic!("expected a rule error, got {other:?}"),
    }
}

#[test]
fn the_built_in_pack_compiles() {
    let set = RuleSet::build(&Inputs::default()).expect("built-in pack is valid");
    assert!(set.rules.len() >= 40, "{}", set.rules.len());
    assert!(set.inactive.iter().any(|(id, _)| id == "api_key_created_by_non_admin"));
    // The drift and reconciliation rules check the telemetry itself, not an attacker's
    // technique.
    let telemetry = [
        "unknown_event_type",
        "inventory_change_not_in_audit_log",
        "audit_event_not_reflected",
    ];
    for rule in set.rules.iter().filter(|r| !telemetry.contains(&r.id.as_str())) {
        assert!(!rule.attack.is_empty(), "{} names no ATT&CK technique", rule.id);
    }
}

#[test]
fn a_bad_rule_names_its_id_and_field() {
    let e = rule_error(
        "[[rule]]\nid = \"mine\"\ntitle = \"t\"\nseverity = \"high\"\n[rule.threshold]\ngroup_by = \"actor.email\"\ncount = 5\nwindow = \"soon\"\n",
    );
    assert_eq!((e.rule.as_str(), e.field.as_str()), ("mine", "threshold.window"), "{e}");
    let e =
        rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"high\"\nmatch = { \"actor.nick\" = \"a\" }\n");
    assert_eq!(e.field, "match.actor.nick", "{e}");
    let e = rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"urgent\"\nmatch = { type = \"a\" }\n");
    assert_eq!((e.rule.as_str(), e.field.as_str()), ("x", "urgent"), "{e}");
    assert!(e.to_string().contains("rule `x`"));
    let e =
        rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\nmatch = { type = { regex = \"(\" } }\n");
    assert_eq!(e.field, "match.type.regex", "{e}");
    let e =
        rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\nmatch = { type = { like = \"a\" } }\n");
    assert_eq!(e.field, "match.type.like", "{e}");
    let e =
        rule_error("[[rule]]\nid = \"x\"\ntitle = \"t\"\nseverity = \"low\"\ncolour = 1\nmatch = { type = \"a\" }\n");
    assert_eq!(e.field, "colour", "{e}");
}

#[test]
fn a_file_rule_replaces_a_built_in_one_and_unknown_disabled_ids_are_refused() {
    let set = build_file(
        "[[rule]]\nid = \"scim_disabled\"\ntitle = \"SCIM off\"\nseverity = \"low\"\nmatch = { type = \"scim.disabled\" }\n",
    )
    .expect("valid");
    let scim = set.rules.iter().find(|r| r.id == "scim_disabled").expect("present");
    assert_eq!(scim.severity, Severity::Low);
    let err = RuleSet::build(&Inputs {
        disabled_rules: &["no_such_rule".to_string()],
        ..Inputs::default()
    })
    .expect_err("unknown id");
    assert!(matches!(err, RuleSetError::Input { ref key, .. } if key == "guardrails.disabled_rules"));
    let set = RuleSet::build(&Inputs {
        disabled_rules: &["scim_disabled".to_string()],
        ..Inputs::default()
    })
    .expect("valid");
    assert!(!set.rules.iter().any(|r| r.id == "scim_disabled"));
}

#[test]
fn a_bad_custom_pattern_names_its_key() {
    let err = RuleSet::build(&Inputs {
        custom_patterns: &[("badge".to_string(), "(".to_string())],
        ..Inputs::default()
    })
    .expect_err("bad regex");
    assert!(matches!(err, RuleSetError::Input { ref key, .. } if key == "guardrails.custom_patterns.badge"));
}

const HEAD: &str = "[[rule]]\nid = \"r\"\ntitle = \"t\"\nseverity = \"low\"\n";

fn only_rule(text: &str) -> Rule {
    let set = build_file(&format!("{HEAD}{text}")).expect("valid");
    set.rules.into_iter().find(|r| r.id == "r").expect("present")
}

#[test]
fn a_threshold_takes_one_distinct_field_several_or_a_minimum_per_field() {
    let minimums = |rule: Rule| match rule.kind {
        RuleKind::Threshold { distinct, .. } => distinct
            .iter()
            .map(|d| (d.field.to_string(), d.min))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let one = only_rule(
        "[rule.threshold]\ngroup_by = \"actor.email\"\ndistinct = \"actor.ip\"\ncount = 5\nwindow = \"30m\"\n",
    );
    assert_eq!(minimums(one), [("actor.ip".to_string(), 5)]);
    let both = only_rule(
        "[rule.threshold]\ngroup_by = \"user.email\"\ndistinct = { \"actor.geo.country\" = 3, \"actor.user_agent\" = 2 }\nwindow = \"4h\"\n",
    );
    assert_eq!(
        minimums(both),
        [
            ("actor.geo.country".to_string(), 3),
            ("actor.user_agent".to_string(), 2)
        ]
    );
    let list = only_rule(
        "[rule.threshold]\ngroup_by = []\ndistinct = [\"target.id\", \"target.name\"]\ncount = 3\nwindow = \"1h\"\n",
    );
    assert_eq!(
        minimums(list),
        [("target.id".to_string(), 3), ("target.name".to_string(), 3)]
    );
    let e = rule_error(&format!(
        "{HEAD}[rule.threshold]\ngroup_by = \"a.b\"\ndistinct = {{ \"actor.ip\" = 3 }}\ncount = 4\nwindow = \"1h\"\n"
    ));
    assert_eq!(e.field, "threshold.count", "{e}");
    let e = rule_error(&format!(
        "{HEAD}[rule.threshold]\ngroup_by = \"actor.ip\"\ndistinct = {{ \"actor.nick\" = 3 }}\nwindow = \"1h\"\n"
    ));
    assert_eq!(e.field, "threshold.distinct", "{e}");
    let e = rule_error(&format!(
        "{HEAD}[rule.threshold]\ngroup_by = \"actor.ip\"\ndistinct = {{ \"actor.email\" = 1 }}\nwindow = \"1h\"\n"
    ));
    assert_eq!(e.field, "threshold.distinct", "{e}");
}

#[test]
fn velocity_first_seen_pairs_not_regex_and_attack_ids_compile() {
    let travel = only_rule(
        "attack = [\"T1078.004\"]\n[rule.velocity]\ngroup_by = \"actor.email\"\nmin_km = 1000\nmin_kmh = 800.5\nwindow = \"24h\"\n",
    );
    assert_eq!(travel.attack, ["T1078.004"]);
    assert!(matches!(travel.kind, RuleKind::Velocity { min_km, min_kmh, .. } if min_km == 1000.0 && min_kmh == 800.5));
    let pair = only_rule(
        "[rule.first_seen]\ngroup_by = []\nvalue = [\"target.id\", \"target.name\"]\nbaseline = false\nmax_values = 256\nretain = \"14d\"\n",
    );
    match pair.kind {
        RuleKind::FirstSeen {
            group_by,
            value,
            baseline,
            max_values,
            ..
        } => {
            assert!(group_by.is_empty());
            assert_eq!(value.len(), 2);
            assert_eq!((baseline, max_values), (false, 256));
        }
        other => panic!("{other:?}"),
    }
    let quoted = only_rule(
        "match = { 'raw.\"role.assignment.created\".id' = { regex = '^role_assignment_role-', not_regex = 'reader' } }\n",
    );
    assert_eq!(quoted.predicate.all.len(), 2);
    for (text, field) in [
        ("attack = [\"T78\"]\nmatch = { type = \"a\" }\n", "attack"),
        ("attack = [\"T1078.4\"]\nmatch = { type = \"a\" }\n", "attack"),
        ("match = { type = { not_regex = \"(\" } }\n", "match.type.not_regex"),
        (
            "[rule.velocity]\ngroup_by = \"actor.email\"\nmin_km = 0\nmin_kmh = 800\nwindow = \"1h\"\n",
            "velocity.min_km",
        ),
        (
            "[rule.first_seen]\ngroup_by = \"actor.email\"\nvalue = []\n",
            "first_seen.value",
        ),
        (
            "[rule.first_seen]\ngroup_by = \"actor.email\"\nvalue = \"target.id\"\nmax_values = 5000\n",
            "first_seen.max_values",
        ),
    ] {
        let e = rule_error(&format!("{HEAD}{text}"));
        assert_eq!(e.field, field, "{e}");
    }
}

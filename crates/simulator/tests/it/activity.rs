//! Background activity and the pre-generated history: the organization keeps changing, and
//! the history holds the security scenarios.

use std::time::Duration;

use openai_audit_simulator::{COMPLIANCE_EVENT_TYPES, SimConfig, Simulator};

use crate::helpers::sim_with;

fn compliance_total(sim: &Simulator) -> usize {
    COMPLIANCE_EVENT_TYPES
        .iter()
        .map(|t| sim.org().compliance_event_ids(t).len())
        .sum()
}

// Paused clock: the two seconds below are virtual, they only drive the activity ticks.
#[tokio::test(start_paused = true)]
async fn background_activity_keeps_the_organization_busy() {
    let sim = sim_with(SimConfig {
        events_per_second: 50.0,
        history_events: 0,
        ..SimConfig::default()
    })
    .await;
    let (audit, compliance) = (sim.org().audit_len(), compliance_total(&sim));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = (sim.org().audit_len() - audit) + (compliance_total(&sim) - compliance);
    assert!(grown >= 50, "about 100 activities in 2 s at 50/s, got {grown} records");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_history_holds_the_security_scenarios() {
    let sim = sim_with(SimConfig::default()).await;
    let events = sim.org().audit_events();
    let count = |ty: &str| events.iter().filter(|e| e["type"] == ty).count();
    assert!(count("login.failed") >= 5, "a burst of failures");
    assert!(count("role.bound_to_resource") >= 1);
    assert!(count("tenant.admin_api_key.created") >= 1);
    let countries: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| e["actor"]["session"]["ip_address_details"]["country"].as_str())
        .collect();
    assert!(countries.len() >= 4, "logins from several countries: {countries:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_history_without_compliance_files_has_the_same_audit_log() {
    let cfg = SimConfig {
        history_events: 3000,
        ..SimConfig::default()
    };
    let with = sim_with(cfg.clone()).await;
    let without = sim_with(SimConfig {
        history_compliance: false,
        ..cfg
    })
    .await;
    let shape = |sim: &Simulator| -> Vec<(String, String)> {
        sim.org()
            .audit_events()
            .iter()
            .map(|e| (e["id"].to_string(), e["type"].to_string()))
            .collect()
    };
    assert!(with.org().audit_len() > 1000);
    assert_eq!(shape(&with), shape(&without));
    assert!(with.org().compliance_total_bytes("CONVERSATION_MESSAGE") > 0);
    for ty in COMPLIANCE_EVENT_TYPES {
        assert_eq!(without.org().compliance_total_bytes(ty), 0, "{ty}");
    }
    with.shutdown().await;
    without.shutdown().await;
}

//! Seeding: the same seed builds the same organization.

use openai_audit_simulator::{SimConfig, Simulator};

use crate::helpers::{sim, sim_with};

#[tokio::test]
async fn the_same_seed_builds_the_same_organization() {
    let (a, b) = (sim().await, sim().await);
    assert_eq!(a.org_id(), b.org_id());
    assert_eq!(a.workspace_id(), b.workspace_id());
    assert_eq!(a.admin_key(), b.admin_key());
    let ids = |s: &Simulator| {
        let mut v: Vec<String> = s
            .org()
            .audit_events()
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    let other = sim_with(SimConfig {
        seed: 7,
        ..SimConfig::default()
    })
    .await;
    assert_ne!(other.org_id(), a.org_id());
    for s in [a, b, other] {
        s.shutdown().await;
    }
}

//! The Admin API audit-log rules and the inventory rules of the built-in pack.

use serde_json::json;

use super::*;

#[test]
fn simple_audit_rules_fire_on_their_type_and_not_on_a_neighbour() {
    let cases = [
        (
            "tenant_admin_api_key_created",
            "tenant.admin_api_key.created",
            "tenant.admin_api_key.deleted",
        ),
        (
            "service_account_created",
            "service_account.created",
            "service_account.updated",
        ),
        ("ip_allowlist_removed", "ip_allowlist.deleted", "ip_allowlist.created"),
        (
            "ip_allowlist_removed",
            "ip_allowlist.config.deactivated",
            "ip_allowlist.config.activated",
        ),
        ("scim_disabled", "scim.disabled", "scim.enabled"),
        (
            "certificates_deactivated",
            "certificates.deactivated",
            "certificates.activated",
        ),
        (
            "tenant_sso_connection_deleted",
            "tenant.sso_connection.deleted",
            "tenant.sso_connection.updated",
        ),
        (
            "tenant_session_revocation_started",
            "tenant.session_revocation.started",
            "tenant.session_policy.updated",
        ),
        (
            "tenant_policy_detached",
            "tenant.policy.detached",
            "tenant.policy.attached",
        ),
    ];
    for (rule, hit, miss) in cases {
        assert_eq!(one(hit, json!({})), [rule], "{hit}");
        assert!(one(miss, json!({})).is_empty(), "{miss}");
    }
}

#[test]
fn a_high_scope_key_is_flagged_and_an_ordinary_one_is_not() {
    for scopes in [
        json!(["api.all"]),
        json!(["*"]),
        json!(["api.model.request", "api.organization.admin"]),
        json!(["api_keys:write"]),
        json!(["models:write"]),
        json!(["organization:write"]),
    ] {
        assert_eq!(
            one("api_key.created", json!({"data": {"scopes": scopes}})),
            ["high_scope_api_key_created"],
            "{scopes}"
        );
    }
    for ordinary in [json!(["api.model.request", "api.files.write"]), json!(["models:read"])] {
        assert!(
            one("api_key.created", json!({"data": {"scopes": ordinary}})).is_empty(),
            "{ordinary}"
        );
    }
    // No scope list at all is the dashboard's "All" permission: unrestricted.
    for data in [json!({"data": {"scopes": []}}), json!({"data": {}}), json!({})] {
        assert_eq!(
            one("api_key.created", data.clone()),
            ["high_scope_api_key_created"],
            "{data}"
        );
    }
}

#[test]
fn raising_a_key_scope_by_an_update_is_flagged_but_an_update_without_scopes_is_not() {
    let raised = admin_record(
        "api_key.updated",
        1,
        json!({"id": "key_1", "changes_requested": {"scopes": ["api.model.request", "api_keys:write"]}}),
    );
    assert_eq!(fresh(vec![raised]), ["high_scope_api_key_created"]);
    let as_panther_reads_it = admin_record(
        "api_key.updated",
        2,
        json!({"id": "key_1", "data": {"scopes": ["all"]}}),
    );
    assert_eq!(fresh(vec![as_panther_reads_it]), ["high_scope_api_key_created"]);
    let renamed = admin_record(
        "api_key.updated",
        3,
        json!({"id": "key_1", "changes_requested": {"name": "ci"}}),
    );
    let narrowed = admin_record(
        "api_key.updated",
        4,
        json!({"id": "key_1", "changes_requested": {"scopes": ["api.model.read"]}}),
    );
    let deleted = admin_record("api_key.deleted", 5, json!({"id": "key_1"}));
    assert!(fresh(vec![renamed, narrowed, deleted]).is_empty());
}

#[test]
fn an_owner_role_assignment_is_flagged_from_the_role_in_its_id_and_a_reader_one_is_not() {
    let owner = admin_record(
        "role.assignment.created",
        1,
        json!({"id": "role_assignment_role-api-organization-owner__api-organization__org-abc123_user-newadmin456",
               "principal_id": "user-newadmin456", "principal_type": "user",
               "resource_id": "org-abc123", "resource_type": "api.organization"}),
    );
    assert_eq!(fresh(vec![owner]), ["privileged_role_granted"]);
    let project_admin = admin_record(
        "role.assignment.created",
        2,
        json!({"id": "role_assignment_role-api-project-admin__api-project__proj_1_user-x"}),
    );
    assert_eq!(fresh(vec![project_admin]), ["privileged_role_granted"]);
    for near_miss in [
        "role_assignment_role-api-organization-reader__api-organization__org-abc123_user-x",
        "role_assignment_role-api-project-viewer__api-project__proj_1_user-x",
    ] {
        let event = admin_record("role.assignment.created", 3, json!({"id": near_miss}));
        assert!(fresh(vec![event]).is_empty(), "{near_miss}");
    }
    let removed = admin_record(
        "role.assignment.deleted",
        4,
        json!({"id": "role_assignment_role-api-organization-owner__api-organization__org-abc123_user-x"}),
    );
    assert!(fresh(vec![removed]).is_empty(), "taking a role away grants nothing");
}

#[test]
fn owner_grants_through_users_and_invites_are_flagged_and_reader_ones_are_not() {
    assert_eq!(
        one("user.updated", json!({"changes_requested": {"role": "owner"}})),
        ["privileged_role_granted"]
    );
    assert_eq!(
        one("invite.sent", json!({"data": {"email": "x@y.z", "role": "owner"}})),
        ["privileged_role_granted"]
    );
    assert!(one("user.updated", json!({"changes_requested": {"role": "reader"}})).is_empty());
}

#[test]
fn an_allowlist_opened_to_everyone_or_a_huge_range_is_flagged_but_a_corporate_range_is_not() {
    for wide in [
        json!(["203.0.113.0/24", "0.0.0.0/0"]),
        json!(["0.0.0.0"]),
        json!(["::/0"]),
        json!(["10.0.0.0/4"]),
        json!(["2001:db8::/16"]),
    ] {
        let event = admin_record("ip_allowlist.updated", 1, json!({"id": "ipal_1", "allowed_ips": wide}));
        assert_eq!(fresh(vec![event]), ["ip_allowlist_widened"], "{wide}");
    }
    let created = admin_record(
        "ip_allowlist.created",
        2,
        json!({"id": "ipal_2", "name": "all", "allowed_ips": ["0.0.0.0/0"]}),
    );
    assert_eq!(fresh(vec![created]), ["ip_allowlist_widened"]);
    for narrow in [
        json!(["203.0.113.0/24"]),
        json!(["10.0.0.0/8"]),
        json!(["2001:db8::/32"]),
    ] {
        let event = admin_record(
            "ip_allowlist.updated",
            3,
            json!({"id": "ipal_1", "allowed_ips": narrow}),
        );
        assert!(fresh(vec![event]).is_empty(), "{narrow}");
    }
}

#[test]
fn a_key_created_outside_key_admins_is_flagged_only_when_key_admins_is_set() {
    let admins = ["ADMIN@example.com".to_string(), "user-svc".to_string()];
    let mut e = engine_with(&admins);
    let by_ann = audit("tenant.admin_api_key.created", 1, json!({}));
    assert_eq!(
        fired(&mut e, vec![by_ann.clone()]),
        ["api_key_created_by_non_admin", "tenant_admin_api_key_created"]
    );
    let restricted = json!({"data": {"scopes": ["api.model.request"]}});
    let mut by_admin = audit("api_key.created", 2, restricted.clone());
    by_admin.actor.as_mut().expect("actor").email = Some("admin@example.com".into());
    let mut by_admin_id = audit("api_key.created", 3, restricted);
    by_admin_id.actor.as_mut().expect("actor").id = Some("user-svc".into());
    assert!(fired(&mut e, vec![by_admin, by_admin_id]).is_empty());
    // Without the list the rule has nothing to compare with and stays off.
    assert_eq!(fired(&mut engine(), vec![by_ann]), ["tenant_admin_api_key_created"]);
}

#[test]
fn inventory_rules_flag_new_owners_and_stale_or_orphaned_keys() {
    // Shapes as the inventory normalizer makes them: `fields` is the object's tracked
    // fields, `changed_fields`/`diff` what a change touched.
    let owner = inventory(
        "user.added",
        1,
        json!({"id": "user-x", "role": "owner"}),
        json!({"kind": "user", "change": "added", "fields": {"email": "x@example.com", "role": "owner"}}),
    );
    let reader = inventory(
        "user.added",
        2,
        json!({"id": "user-y", "role": "reader"}),
        json!({"kind": "user", "change": "added", "fields": {"role": "reader"}}),
    );
    let promoted = inventory(
        "user.changed",
        3,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner"}, "changed_fields": ["role"],
               "diff": [{"field": "role", "before": "reader", "after": "owner"}]}),
    );
    let renamed = inventory(
        "user.changed",
        4,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner", "name": "b"}, "changed_fields": ["name"],
               "diff": [{"field": "name", "before": "a", "after": "b"}]}),
    );
    let observed = inventory(
        "user.observed",
        5,
        json!({"role": "owner"}),
        json!({"fields": {"role": "owner"}}),
    );
    assert_eq!(
        fired(&mut engine(), vec![owner, reader, promoted, renamed, observed]),
        ["inventory_new_owner", "inventory_new_owner"]
    );
    let stale = inventory("inventory.stale_key", 5, json!({}), json!({}));
    let orphaned = inventory("inventory.orphaned_key", 6, json!({}), json!({}));
    assert_eq!(
        fired(&mut engine(), vec![stale, orphaned]),
        ["inventory_stale_key", "inventory_orphaned_key"]
    );
    // The same type from another source is not inventory's.
    let mut imposter = inventory("inventory.stale_key", 7, json!({}), json!({}));
    imposter.source = Source::AuditLog;
    assert!(fired(&mut engine(), vec![imposter]).is_empty());
}

//! The stateful rules of the built-in pack: sign-in attacks, travel, bursts, mass deletions
//! and first-seen values, each with the count, distance or novelty that fires it and the one
//! just short of it.

use serde_json::json;

use super::*;

#[test]
fn credential_stuffing_needs_five_distinct_addresses() {
    let ips = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
    ];
    let got = fired(&mut engine(), stuffing(0, &ips));
    assert_eq!(got, ["credential_stuffing", "event:credential_stuffing"]);
    let two = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.1",
    ];
    assert!(fired(&mut engine(), stuffing(0, &two)).is_empty());
}

#[test]
fn compliance_sign_in_failures_count_as_stuffing_too() {
    let events: Vec<Event> = (0..5)
        .map(|i| {
            let mut e = compliance("AUTH_LOG", i, json!({"action_data": {"action": "login_failed"}}));
            e.actor.as_mut().expect("actor").ip = Some(format!("192.0.2.{i}"));
            e
        })
        .collect();
    let got = fired(&mut engine(), events);
    assert!(got.contains(&"event:credential_stuffing".to_string()), "{got:?}");
}

#[test]
fn brute_force_then_success_needs_five_failures_before_the_success() {
    let ips = ["203.0.113.1"; 5];
    let mut events = stuffing(0, &ips);
    events.push(login(true, 10, "198.51.100.7", "US"));
    let got = fired(&mut engine(), events);
    assert!(got.contains(&"event:brute_force_then_success".to_string()), "{got:?}");
    assert!(
        got.contains(&"brute_force_then_success".to_string()),
        "the success carries the finding"
    );

    let mut four = stuffing(0, &ips[..4]);
    four.push(login(true, 10, "198.51.100.7", "US"));
    let got = fired(&mut engine(), four);
    assert!(!got.iter().any(|r| r.contains("brute_force")), "{got:?}");
}

#[test]
fn a_sign_in_from_a_new_country_is_flagged_but_not_the_first_or_a_repeat() {
    let home = [
        login(true, 1, "198.51.100.7", "US"),
        login(true, 2, "198.51.100.7", "US"),
    ];
    let got = fired(&mut engine(), home.to_vec());
    assert!(got.is_empty(), "{got:?}");
    let mut e = engine();
    let mut events = home.to_vec();
    events.push(login(true, 3, "177.0.0.1", "BR"));
    events.push(login(true, 4, "177.0.0.1", "BR"));
    assert_eq!(
        fired(&mut e, events),
        ["login_from_new_country", "event:login_from_new_country"]
    );
}

/// `n` failed ChatGPT sign-ins (`AUTH_LOG`) a minute apart from `ip`, for `email(i)`.
fn auth_failures(from: u32, n: u32, ip: &str, email: impl Fn(u32) -> String) -> Vec<Event> {
    (0..n)
        .map(|i| {
            record(
                "AUTH_LOG",
                from + i * 60,
                json!({"actor": {"type": "ACCOUNT_USER", "user_id": format!("user-{i}"), "user_email": email(i)},
                       "request_metadata": {"client_ip": ip, "client_user_agent": "Mozilla/5.0 Firefox/128.0"},
                       "action_data": {"action": "login_failed"}}),
            )
        })
        .collect()
}

fn count(rules: &[String], rule: &str) -> usize {
    rules.iter().filter(|r| *r == rule).count()
}

#[test]
fn ten_failures_from_one_address_within_an_hour_are_password_guessing_and_nine_are_not() {
    let one_user = |_| "dana@example.net".to_string();
    let got = fresh(auth_failures(0, 10, "203.0.113.50", one_user));
    assert_eq!(count(&got, "event:password_guessing_from_one_ip"), 1, "{got:?}");
    assert_eq!(count(&got, "event:repeated_sign_in_failures"), 1, "{got:?}");
    let got = fresh(auth_failures(0, 9, "203.0.113.50", one_user));
    assert!(!got.iter().any(|r| r.starts_with("event:")), "{got:?}");
    // Ten spread over ninety minutes never have ten within one hour.
    let spread: Vec<Event> = auth_failures(0, 10, "203.0.113.50", one_user)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.occurred_at = at(T0 + i as i64 * 600);
            e
        })
        .collect();
    assert!(fresh(spread).is_empty());
}

#[test]
fn failures_for_five_accounts_from_one_address_are_password_spraying_and_four_are_not() {
    let got = fresh(auth_failures(0, 5, "203.0.113.60", |i| format!("user{i}@example.net")));
    assert_eq!(
        got,
        ["password_spraying_from_one_ip", "event:password_spraying_from_one_ip"]
    );
    let got = fresh(auth_failures(0, 4, "203.0.113.60", |i| format!("user{i}@example.net")));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_sign_in_from_a_scripting_tool_is_flagged_but_a_browser_on_ubuntu_is_not() {
    let sign_in = |n: u32, action: &str, agent: &str| {
        record(
            "AUTH_LOG",
            n,
            json!({"request_metadata": {"client_ip": "198.51.100.23", "client_user_agent": agent},
                   "action_data": {"action": action}}),
        )
    };
    for (action, agent) in [
        ("login_success", "python-requests/2.32.3"),
        ("native_login_success", "curl/8.5.0"),
        ("token_issued", "Go-http-client/2.0"),
        (
            "login_success",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
        ),
        ("login_success", "Apache-HttpClient/4.5.14 (Java/17.0.2)"),
    ] {
        assert_eq!(fresh(vec![sign_in(1, action, agent)]), ["scripted_sign_in"], "{agent}");
    }
    let admin = {
        let mut e = login(true, 2, "198.51.100.7", "US");
        e.actor.as_mut().expect("actor").user_agent = Some("python-httpx/0.27".into());
        e
    };
    assert_eq!(fresh(vec![admin]), ["scripted_sign_in"]);
    for (action, agent) in [
        (
            "login_success",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("login_success", "codex_cli_rs/0.58.0 (Ubuntu 24.4.0; x86_64)"),
        ("logout_success", "Python/3.12 aiohttp/3.13.5"),
        ("token_issued", "openid-client/5.4.0"),
    ] {
        assert!(fresh(vec![sign_in(1, action, agent)]).is_empty(), "{action} {agent}");
    }
}

/// A successful ChatGPT sign-in by Dana at `minute` from a place.
fn signed_in(minute: i64, (lat, lon): (f64, f64), country: &str) -> Event {
    let mut e = record(
        "AUTH_LOG",
        0,
        json!({"event_id": format!("login-{minute}"),
               "request_metadata": {"client_ip": "198.51.100.23", "client_user_agent": "Mozilla/5.0 Firefox/128.0",
                                    "client_ip_details": {"country": country, "latitude": lat.to_string(), "longitude": lon.to_string()}},
               "action_data": {"action": "login_success"}}),
    );
    e.occurred_at = at(T0 + minute * 60);
    e
}

const LONDON: (f64, f64) = (51.51, -0.13);
const NEW_YORK: (f64, f64) = (40.71, -74.01);

#[test]
fn london_then_new_york_an_hour_apart_is_impossible_travel_and_ten_hours_apart_is_not() {
    let got = fresh(vec![signed_in(0, LONDON, "GB"), signed_in(60, NEW_YORK, "US")]);
    assert!(got.contains(&"event:impossible_travel".to_string()), "{got:?}");
    assert!(
        got.contains(&"impossible_travel".to_string()),
        "the later sign-in carries it: {got:?}"
    );
    // Newest first, as a backfill arrives: the same finding.
    let got = fresh(vec![signed_in(60, NEW_YORK, "US"), signed_in(0, LONDON, "GB")]);
    assert_eq!(count(&got, "event:impossible_travel"), 1, "{got:?}");
    let got = fresh(vec![signed_in(0, LONDON, "GB"), signed_in(600, NEW_YORK, "US")]);
    assert!(
        !got.iter().any(|r| r.contains("impossible_travel")),
        "557 km/h: {got:?}"
    );
}

#[test]
fn impossible_travel_reports_distance_speed_and_both_sign_ins() {
    let mut e = engine();
    let mut events = [signed_in(0, LONDON, "GB"), signed_in(60, NEW_YORK, "US")];
    assert!(e.inspect(&mut events[0]).is_empty());
    let out = e.inspect(&mut events[1]);
    let finding = out
        .iter()
        .find(|f| f.event_type == "impossible_travel")
        .expect("finding event");
    let d = &finding.details;
    assert!(
        (5500.0..5650.0).contains(&d["distance_km"].as_f64().unwrap_or(0.0)),
        "{d}"
    );
    assert_eq!(d["minutes"], 60.0);
    assert!(d["speed_kmh"].as_f64().unwrap_or(0.0) > 5000.0, "{d}");
    assert_eq!(d["evidence"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["attack"], json!(["T1078.004"]));
    assert_eq!(finding.findings[0].attack, ["T1078.004"]);
}

/// Any ChatGPT activity by Dana from `country` with `agent` at `minute`.
fn active(minute: i64, country: &str, agent: &str) -> Event {
    let mut e = record(
        "CODEX_LOG",
        0,
        json!({"event_id": format!("act-{minute}-{country}"), "event_type": "PROMPT_RESPONSE_RECEIVED",
               "request_metadata": {"client_ip": "198.51.100.23", "client_user_agent": agent,
                                    "client_ip_details": {"country": country}},
               "event_details": {"prompt_text": "hello"}}),
    );
    e.occurred_at = at(T0 + minute * 60);
    e
}

#[test]
fn three_countries_with_two_clients_within_four_hours_are_flagged_but_one_client_is_not() {
    let got = fresh(vec![
        active(0, "DE", "Firefox"),
        active(30, "NL", "Firefox"),
        active(60, "BR", "python-requests/2.32"),
    ]);
    assert_eq!(count(&got, "event:activity_from_many_countries"), 1, "{got:?}");
    let got = fresh(vec![
        active(0, "DE", "Firefox"),
        active(30, "NL", "Firefox"),
        active(60, "BR", "Firefox"),
    ]);
    assert_eq!(count(&got, "event:activity_from_many_countries"), 0, "{got:?}");
    let got = fresh(vec![
        active(0, "DE", "Firefox"),
        active(30, "NL", "curl/8"),
        active(300, "BR", "Firefox"),
    ]);
    assert_eq!(
        count(&got, "event:activity_from_many_countries"),
        0,
        "five hours: {got:?}"
    );
}

/// `n` workspace actions `what` by Dana, `gap` seconds apart, each on its own object.
fn actions(n: u32, gap: u32, what: &str, object: &str) -> Vec<Event> {
    (0..n)
        .map(|i| {
            record(
                "AUDIT_LOG",
                i * gap,
                json!({"action": what, "action_result": "SUCCESS", "action_privilege": "STANDARD_USER",
                       "action_data": {object: format!("obj-{i}")}}),
            )
        })
        .collect()
}

#[test]
fn twenty_conversation_deletions_in_a_day_are_flagged_and_nineteen_are_not() {
    let got = fresh(actions(25, 120, "CONVERSATION_DELETE", "conversation_id"));
    assert_eq!(count(&got, "event:mass_conversation_deletion"), 1, "{got:?}");
    assert!(fresh(actions(19, 120, "CONVERSATION_DELETE", "conversation_id")).is_empty());
    // Twenty spread over 26 hours never have twenty within one day.
    assert!(fresh(actions(20, 4920, "CONVERSATION_DELETE", "conversation_id")).is_empty());
}

#[test]
fn thirty_file_downloads_in_a_day_are_flagged_and_twenty_nine_are_not() {
    let got = fresh(actions(30, 60, "FILE_DOWNLOAD", "file_id"));
    assert_eq!(count(&got, "event:bulk_file_downloads"), 1, "{got:?}");
    assert!(fresh(actions(29, 60, "FILE_DOWNLOAD", "file_id")).is_empty());
}

/// A connector request by Dana: `app` and its input.
fn app_request(n: u32, app: &str, input: Value) -> Event {
    record(
        "APP_LOG",
        n,
        json!({"app_id": format!("asdk_app_{app}"), "app_name": app, "app_type": "SERVICE", "log_type": "request", "input": input}),
    )
}

#[test]
fn five_different_drive_downloads_in_an_hour_are_flagged_but_one_file_six_times_is_not() {
    let downloads = |urls: &[&str]| -> Vec<Event> {
        urls.iter()
            .enumerate()
            .map(|(i, url)| {
                app_request(
                    i as u32 * 60,
                    "Google Drive",
                    json!({"url": url, "download_raw_file": true}),
                )
            })
            .collect()
    };
    let five = [
        "https://drive/a",
        "https://drive/b",
        "https://drive/c",
        "https://drive/d",
        "https://drive/e",
    ];
    let got = fresh(downloads(&five));
    assert_eq!(count(&got, "event:drive_download_burst"), 1, "{got:?}");
    let got = fresh(downloads(&["https://drive/a"; 6]));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn ten_different_slack_searches_in_five_minutes_are_flagged_and_nine_are_not() {
    let searches = |n: u32| -> Vec<Event> {
        (0..n)
            .map(|i| app_request(i * 20, "Slack", json!({"query": format!("in:finance salary {i}")})))
            .collect()
    };
    assert_eq!(count(&fresh(searches(10)), "event:slack_query_burst"), 1);
    assert!(fresh(searches(9)).is_empty());
}

fn mcp_call(n: u32, tool: &str, connector: &str) -> Event {
    record(
        "CODEX_LOG",
        n,
        json!({"event_type": "APP_MCP_CALL", "client_id": "CODEX_CLI", "workspace_id": "ws-1",
               "event_details": {"detail_type": "APP_MCP_CALL", "name": tool, "arguments": {},
                                 "tool_meta": {"connector_id": connector}}}),
    )
}

#[test]
fn a_users_first_call_of_an_mcp_tool_is_flagged_once() {
    let got = fresh(vec![
        mcp_call(1, "create_issue", "conn-github"),
        mcp_call(2, "create_issue", "conn-github"),
        mcp_call(3, "list_repos", "conn-github"),
    ]);
    assert_eq!(
        got,
        [
            "codex_mcp_tool_first_seen",
            "event:codex_mcp_tool_first_seen",
            "codex_mcp_tool_first_seen",
            "event:codex_mcp_tool_first_seen"
        ]
    );
}

#[test]
fn ten_mcp_tools_over_three_connectors_in_half_an_hour_are_flagged_but_over_two_are_not() {
    let burst = |connectors: &[&str]| -> Vec<String> {
        let events = (0..12)
            .map(|i| mcp_call(i * 60, &format!("tool_{i}"), connectors[i as usize % connectors.len()]))
            .collect();
        fresh(events)
    };
    assert_eq!(
        count(&burst(&["conn-a", "conn-b", "conn-c"]), "event:codex_mcp_tool_burst"),
        1
    );
    assert_eq!(count(&burst(&["conn-a", "conn-b"]), "event:codex_mcp_tool_burst"), 0);
}

#[test]
fn a_users_first_mcp_app_is_flagged_once_per_app() {
    let mcp = |n: u32, app: &str| {
        record(
            "APP_LOG",
            n,
            json!({"app_id": app, "app_name": "Jira", "app_type": "MCP", "log_type": "request", "input": {"query": "x"}}),
        )
    };
    let got = fresh(vec![
        mcp(1, "asdk_app_jira"),
        mcp(2, "asdk_app_jira"),
        mcp(3, "asdk_app_linear"),
    ]);
    assert_eq!(count(&got, "event:mcp_app_first_seen"), 2, "{got:?}");
    let service = app_request(4, "Gmail", json!({"query": "x"}));
    assert!(fresh(vec![service]).is_empty(), "not an MCP app");
}

#[test]
fn a_plugin_new_to_the_workspace_is_flagged_but_a_second_install_by_someone_else_is_not() {
    let install = |n: u32, who: &str, display: &str, name: &str| {
        record(
            "CODEX_LOG",
            n,
            json!({"event_type": "PLUGIN_INSTALLED", "client_id": "CODEX_CLI", "workspace_id": "ws-1",
                   "actor": {"type": "ACCOUNT_USER", "user_id": who, "user_email": format!("{who}@example.net")},
                   "event_details": {"detail_type": "PLUGIN_INSTALLED", "plugin_id": format!("plg-{name}"),
                                     "plugin_name": name, "plugin_display_name": display}}),
        )
    };
    let got = fresh(vec![
        install(1, "dana", "Terraform Helper", "terraform-helper"),
        install(2, "eli", "Terraform Helper", "terraform-helper"),
        install(3, "eli", "Terraform Helper", "terraform-helpers"),
    ]);
    assert_eq!(
        count(&got, "event:codex_plugin_first_seen"),
        2,
        "the first and the lookalike: {got:?}"
    );
}

#[test]
fn the_rule_state_stays_within_its_byte_budget_forgetting_the_least_recently_active() {
    const BUDGET: usize = 1 << 20;
    let mut engine = engine().with_budget(BUDGET);
    let mut most = 0;
    for n in 0..30_000u32 {
        let mut e = login(n % 3 != 0, n, &format!("203.0.113.{}", n % 250), "US");
        if let Some(a) = e.actor.as_mut() {
            a.email = Some(format!("user{n}@example.com"));
        }
        engine.inspect(&mut e);
        // Held to the budget every FIT_EVERY events (what those add comes on top in between).
        if engine
            .state()
            .processed
            .is_multiple_of(crate::guardrails::engine::FIT_EVERY)
        {
            most = most.max(engine.state().group_bytes());
        }
    }
    assert!(most > BUDGET / 2, "the budget was reached: {most}");
    assert!(
        most <= BUDGET + BUDGET / 10,
        "{most} bytes against a budget of {BUDGET}"
    );
    let groups = |state: &State, key: &str| {
        state
            .rules
            .values()
            .filter(|r| match r {
                super::super::stateful::RuleState::FirstSeen { groups } => groups.contains_key(key),
                _ => false,
            })
            .count()
    };
    assert_eq!(
        groups(engine.state(), "user0@example.com"),
        0,
        "the first users were forgotten"
    );
    assert_eq!(
        groups(engine.state(), "user29998@example.com"),
        1,
        "the latest are kept"
    );
}

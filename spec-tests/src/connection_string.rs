//! Runner for the connection string spec tests (`connection-string/tests/*.json`).
//!
//! Each file holds `{"tests": [...]}`; each case has `description`, `uri`, `valid`, `warning`,
//! `hosts`, `auth` and `options`. A `null` field is not checked (tests README). Hosts are
//! compared in order (type, host, and port when given); `auth` and `options` compare only the
//! fields they list, option names ignoring case.

use serde_json::{json, Map, Value};

use sdam::connection_string::{ConnectionString, ServerMonitoringMode, WriteConcernW};
use sdam::ServerAddress;

/// Runs every case of a connection string (or URI options) test file.
///
/// Returns `Err` naming the first failing case's description and its first difference.
pub fn run(test_file: &Value) -> Result<(), String> {
    run_cases(test_file)
}

/// Shared with the URI options runner, whose files have the same format.
pub(crate) fn run_cases(test_file: &Value) -> Result<(), String> {
    let cases = test_file
        .get("tests")
        .and_then(Value::as_array)
        .ok_or_else(|| "the test file has no \"tests\" array".to_owned())?;
    for case in cases {
        let description = case.get("description").and_then(Value::as_str).unwrap_or("<no description>");
        run_case(case).map_err(|e| format!("case {description:?}: {e}"))?;
    }
    Ok(())
}

fn run_case(case: &Value) -> Result<(), String> {
    let uri = case.get("uri").and_then(Value::as_str).ok_or("no \"uri\" string")?;
    let valid = case.get("valid").and_then(Value::as_bool).unwrap_or(true);
    let parsed = ConnectionString::parse(uri);
    let cs = match (valid, parsed) {
        (false, Err(_)) => return Ok(()),
        (false, Ok(cs)) => {
            return Err(format!("expected an error for {uri:?}, but it parsed: {cs:?}"));
        }
        (true, Err(e)) => return Err(format!("expected {uri:?} to parse, got error: {e}")),
        (true, Ok(cs)) => cs,
    };
    if let Some(expected) = case.get("warning").and_then(Value::as_bool) {
        let actual = !cs.warnings().is_empty();
        if expected != actual {
            let shown: Vec<String> = cs.warnings().iter().map(ToString::to_string).collect();
            return Err(format!("warning: expected {expected}, actual {actual} {shown:?}"));
        }
    }
    if let Some(hosts) = case.get("hosts").and_then(Value::as_array) {
        check_hosts(hosts, cs.hosts())?;
    }
    if let Some(auth) = case.get("auth").and_then(Value::as_object) {
        let actual = [("username", cs.username()), ("password", cs.password()), ("db", cs.database())];
        for (field, value) in actual {
            match auth.get(field) {
                None | Some(Value::Null) => {}
                Some(expected) if expected.as_str() == value => {}
                Some(expected) => return Err(format!("auth.{field}: expected {expected}, actual {value:?}")),
            }
        }
    }
    if let Some(options) = case.get("options").and_then(Value::as_object) {
        check_options(options, &cs)?;
    }
    Ok(())
}

/// The tests' host `type`: "ipv4", "ip_literal", "hostname" or "unix".
fn host_type(address: &ServerAddress) -> &'static str {
    match address {
        ServerAddress::Unix { .. } => "unix",
        ServerAddress::Tcp { host, .. } if host.contains(':') => "ip_literal",
        ServerAddress::Tcp { host, .. } if host.parse::<std::net::Ipv4Addr>().is_ok() => "ipv4",
        _ => "hostname",
    }
}

fn check_hosts(expected: &[Value], actual: &[ServerAddress]) -> Result<(), String> {
    if expected.len() != actual.len() {
        return Err(format!("hosts: expected {} hosts {expected:?}, actual {actual:?}", expected.len()));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let field = |name: &str| e.get(name).filter(|v| !v.is_null());
        if let Some(t) = field("type") {
            if t.as_str() != Some(host_type(a)) {
                return Err(format!("hosts[{i}].type: expected {t}, actual {:?} ({a})", host_type(a)));
            }
        }
        if let Some(h) = field("host") {
            if h.as_str() != Some(a.host()) {
                return Err(format!("hosts[{i}].host: expected {h}, actual {:?}", a.host()));
            }
        }
        if let Some(p) = field("port") {
            if p.as_u64() != a.port().map(u64::from) {
                return Err(format!("hosts[{i}].port: expected {p}, actual {:?}", a.port()));
            }
        }
    }
    Ok(())
}

/// Compares each listed option with the parsed value.
pub(crate) fn check_options(expected: &Map<String, Value>, cs: &ConnectionString) -> Result<(), String> {
    for (name, want) in expected {
        let got = option_value(cs, name).ok_or_else(|| format!("options.{name}: not a known option name"))?;
        if &got != want {
            return Err(format!("options.{name}: expected {want}, actual {got}"));
        }
    }
    Ok(())
}

fn ms(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

fn string(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| json!(s))
}

fn pairs(p: &[(String, String)]) -> Value {
    Value::Object(p.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// The parsed value of option `name` (any case) in the tests' JSON representation: `null`
/// when the option is not set; `None` when `name` is not an option this runner knows.
pub(crate) fn option_value(cs: &ConnectionString, name: &str) -> Option<Value> {
    let o = cs.options();
    Some(match name.to_ascii_lowercase().as_str() {
        "appname" => string(o.app_name.as_deref()),
        "authmechanism" => string(o.auth_mechanism.map(|m| m.as_str())),
        "authmechanismproperties" => o.auth_mechanism_properties.as_deref().map_or(Value::Null, pairs),
        "authsource" => string(o.auth_source.as_deref()),
        "compressors" => o
            .compressors
            .as_ref()
            .map_or(Value::Null, |c| Value::Array(c.iter().map(|c| json!(c.as_str())).collect())),
        "connecttimeoutms" => ms(o.connect_timeout),
        "directconnection" => json!(o.direct_connection),
        "enableoverloadretargeting" => json!(o.enable_overload_retargeting),
        "heartbeatfrequencyms" => ms(o.heartbeat_frequency),
        "journal" => json!(o.journal),
        "loadbalanced" => json!(o.load_balanced),
        "localthresholdms" => ms(o.local_threshold),
        "maxadaptiveretries" => json!(o.max_adaptive_retries),
        "maxconnecting" => json!(o.max_connecting),
        "maxidletimems" => ms(o.max_idle_time),
        "maxpoolsize" => json!(o.max_pool_size),
        "maxstalenessseconds" => json!(o.max_staleness.map(|d| d.as_secs())),
        "minpoolsize" => json!(o.min_pool_size),
        "proxyhost" => string(o.proxy_host.as_deref()),
        "proxypassword" => string(o.proxy_password.as_ref().map(|s| s.expose())),
        "proxyport" => json!(o.proxy_port),
        "proxyusername" => string(o.proxy_username.as_deref()),
        "readconcernlevel" => string(o.read_concern_level.as_deref()),
        "readpreference" => string(o.read_preference.map(|m| m.as_str())),
        "readpreferencetags" => Value::Array(o.read_preference_tags.iter().map(|t| pairs(&t.0)).collect()),
        "replicaset" => string(o.replica_set.as_deref()),
        "retryreads" => json!(o.retry_reads),
        "retrywrites" => json!(o.retry_writes),
        "servermonitoringmode" => string(o.server_monitoring_mode.map(|m| match m {
            ServerMonitoringMode::Auto => "auto",
            ServerMonitoringMode::Stream => "stream",
            ServerMonitoringMode::Poll => "poll",
        })),
        "serverselectiontimeoutms" => ms(o.server_selection_timeout),
        "serverselectiontryonce" => json!(o.server_selection_try_once),
        "sockettimeoutms" => ms(o.socket_timeout),
        "srvmaxhosts" => json!(o.srv_max_hosts),
        "srvservicename" => string(o.srv_service_name.as_deref()),
        // Whether TLS is on (mongodb+srv turns it on unless the connection string says no).
        "ssl" | "tls" => json!(cs.tls_enabled()),
        "timeoutms" => ms(o.timeout),
        "tlsallowinvalidcertificates" => json!(o.tls_allow_invalid_certificates),
        "tlsallowinvalidhostnames" => json!(o.tls_allow_invalid_hostnames),
        "tlscafile" => string(o.tls_ca_file.as_deref()),
        "tlscertificatekeyfile" => string(o.tls_certificate_key_file.as_deref()),
        "tlscertificatekeyfilepassword" => {
            string(o.tls_certificate_key_file_password.as_ref().map(|s| s.expose()))
        }
        "tlsdisablecertificaterevocationcheck" => json!(o.tls_disable_certificate_revocation_check),
        "tlsdisableocspendpointcheck" => json!(o.tls_disable_ocsp_endpoint_check),
        "tlsinsecure" => json!(o.tls_insecure),
        "w" => match &o.w {
            None => Value::Null,
            Some(WriteConcernW::Nodes(n)) => json!(n),
            Some(WriteConcernW::Majority) => json!("majority"),
            Some(WriteConcernW::Custom(s)) => json!(s),
        },
        "waitqueuetimeoutms" => ms(o.wait_queue_timeout),
        "wtimeoutms" => ms(o.w_timeout),
        "zlibcompressionlevel" => json!(o.zlib_compression_level),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::run;

    fn file(case: serde_json::Value) -> serde_json::Value {
        json!({ "tests": [case] })
    }

    #[test]
    fn passes_a_matching_case() {
        let case = json!({
            "description": "ok", "uri": "mongodb://u:p@[::1]:5,h/db?W=2&readPreference=nearest&readPreferenceTags=a:b",
            "valid": true, "warning": false,
            "hosts": [{"type": "ip_literal", "host": "::1", "port": 5}, {"type": "hostname", "host": "h", "port": null}],
            "auth": {"username": "u", "password": "p", "db": "db"},
            "options": {"w": 2, "readpreferencetags": [{"a": "b"}], "tls": false}
        });
        assert_eq!(run(&file(case)), Ok(()));
    }

    #[test]
    fn reports_the_first_difference() {
        let cases = [
            (json!({"description": "d1", "uri": "mongodb://h", "valid": false}), "expected an error"),
            (
                json!({"description": "d2", "uri": "mongodb://", "valid": true}),
                "expected \"mongodb://\" to parse",
            ),
            (
                json!({"description": "d3", "uri": "mongodb://h/?x=1", "valid": true, "warning": false}),
                "warning",
            ),
            (
                json!({"description": "d4", "uri": "mongodb://h", "valid": true, "hosts": [{"host": "g"}]}),
                "hosts[0].host",
            ),
            (
                json!({"description": "d5", "uri": "mongodb://h/?w=1", "valid": true, "options": {"w": 2}}),
                "options.w",
            ),
            (
                json!({"description": "d6", "uri": "mongodb://h", "valid": true, "options": {"nope": 1}}),
                "options.nope",
            ),
            (
                json!({"description": "d7", "uri": "mongodb://u@h", "valid": true, "auth": {"username": "v"}}),
                "auth.username",
            ),
        ];
        for (case, needle) in cases {
            let description = case["description"].as_str().unwrap().to_owned();
            let err = run(&file(case)).unwrap_err();
            assert!(err.starts_with(&format!("case {description:?}: ")), "{err}");
            assert!(err.contains(needle), "{err}");
        }
        assert!(run(&json!({})).is_err());
    }
}

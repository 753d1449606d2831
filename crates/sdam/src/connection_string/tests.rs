use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::address::AddressError;
use crate::read_preference::{ReadPreferenceMode, TagSet};

fn ok(uri: &str) -> ConnectionString {
    match ConnectionString::parse(uri) {
        Ok(cs) => cs,
        Err(e) => panic!("{uri:?} should parse: {e}"),
    }
}

fn err(uri: &str) -> ConnectionStringError {
    match ConnectionString::parse(uri) {
        Ok(cs) => panic!("{uri:?} should be rejected, got {cs:?}"),
        Err(e) => e,
    }
}

fn hosts(uri: &str) -> Vec<String> {
    ok(uri).hosts().iter().map(ToString::to_string).collect()
}

#[test]
fn schemes() {
    assert!(!ok("mongodb://a").is_srv());
    assert!(ok("MongoDB+SRV://a.b.c").is_srv());
    assert_eq!(
        err("mongo://localhost:27017").to_string(),
        "invalid connection string scheme in \"mongo://\": expected \"mongodb://\" or \"mongodb+srv://\""
    );
    assert!(matches!(err(""), ConnectionStringError::InvalidScheme { .. }));
    assert!(matches!(err("mongodb:/a"), ConnectionStringError::InvalidScheme { .. }));
    assert!(matches!(err("mongodb://"), ConnectionStringError::MissingHost));
    assert!(matches!(err("mongodb://u:p@/db"), ConnectionStringError::MissingHost));
}

#[test]
fn host_forms() {
    assert_eq!(hosts("mongodb://Example.COM,127.0.0.1:27018/"), ["example.com:27017", "127.0.0.1:27018"]);
    assert_eq!(hosts("mongodb://[::1]:27019,[FE80::1]"), ["[::1]:27019", "[fe80::1]:27017"]);
    assert_eq!(hosts("mongodb://bücher.example.com"), ["bücher.example.com:27017"]);
    assert_eq!(hosts("mongodb://example.com?tls=true"), ["example.com:27017"]);
    for bad in [
        "mongodb://localhost::27017",
        "mongodb://::",
        "mongodb://a,,b",
        "mongodb://a,",
        "mongodb://a:0",
        "mongodb://a:65536/",
        "mongodb://a:-1",
        "mongodb://[::1]:foo",
        "mongodb://[::1",
        "mongodb://a b",
        "mongodb://a%2",
    ] {
        let e = err(bad);
        assert!(
            matches!(
                e,
                ConnectionStringError::InvalidHost { .. }
                    | ConnectionStringError::InvalidPercentEncoding { .. }
            ),
            "{bad}: {e:?}"
        );
    }
    assert_eq!(
        err("mongodb://localhost:foo").to_string(),
        "invalid host \"localhost:foo\": invalid port \"foo\": expected a number from 1 to 65535"
    );
}

#[test]
fn socket_paths() {
    let cs = ok("mongodb://%2Ftmp%2FMongoDB-27017.sock,rel%2F%20%2Fx.sock,mongodb-27017.sock/admin.sock");
    assert_eq!(
        cs.hosts(),
        &[
            ServerAddress::Unix { path: "/tmp/MongoDB-27017.sock".into() },
            ServerAddress::Unix { path: "rel/ /x.sock".into() },
            ServerAddress::parse("mongodb-27017.sock").unwrap(),
        ]
    );
    assert_eq!(cs.database(), Some("admin.sock"));
    assert_eq!(
        err("mongodb:///tmp/mongodb-27017.sock/").to_string(),
        "unsupported host \"/tmp/mongodb-27017.sock\": UNIX domain socket paths must be URL encoded (write '/' as %2F)"
    );
    // A decoded slash that is not a socket path is not a host.
    assert!(matches!(err("mongodb://a%2Fb"), ConnectionStringError::InvalidHost { .. }));
    assert!(matches!(err("mongodb://%2Ftmp%2Fa%00.sock"), ConnectionStringError::InvalidHost { .. }));
}

#[test]
fn userinfo() {
    let cs = ok("mongodb://%40l%3Ace%2F%3D:p%25ss%3A@example.com");
    assert_eq!((cs.username(), cs.password()), (Some("@l:ce/="), Some("p%ss:")));
    let cs = ok("mongodb://!$&'()*+,;=:!$&'()*+,;=@127.0.0.1/admin");
    assert_eq!(cs.username(), Some("!$&'()*+,;="));
    assert_eq!(cs.password(), Some("!$&'()*+,;="));
    assert_eq!(ok("mongodb://alice@h").password(), None);
    assert_eq!(ok("mongodb://alice:@h").password(), Some(""));
    assert_eq!(ok("mongodb://h").username(), None);
    // At-signs after the hosts are not userinfo.
    assert_eq!(ok("mongodb://u:p@h/db?replicaSet=a@b").options().replica_set.as_deref(), Some("a@b"));

    for (uri, problem) in [
        ("mongodb://alice:foo:bar@h", "contains more than one unescaped ':'"),
        ("mongodb://alice@@h", "contains an unescaped '@'"),
        ("mongodb://alice@foo:bar@h", "contains an unescaped '@'"),
        ("mongodb://alice%foo:bar@h", "contains a '%' that does not start a %XX escape"),
        ("mongodb://user%20%:password@h", "contains a '%' that does not start a %XX escape"),
        ("mongodb://user%w:password@h", "contains a '%' that does not start a %XX escape"),
        ("mongodb://alice/@localhost/db", "contains an unescaped '/'"),
        ("mongodb://alice/bob:foo@localhost/db", "contains an unescaped '/'"),
        ("mongodb://alice:foo/bar@localhost/db", "contains an unescaped '/'"),
        ("mongodb://a[b:c@h", "contains '[', which must be percent-encoded"),
    ] {
        match err(uri) {
            ConnectionStringError::UserinfoNotEncoded { problem: p } => assert_eq!(p, problem, "{uri}"),
            e => panic!("{uri}: {e:?}"),
        }
    }
    // The message never repeats the password.
    assert!(!err("mongodb://u:sec%ret@h").to_string().contains("sec"));
    assert!(!err("mongodb://u:sec%FFret@h").to_string().contains("sec"));
    assert!(matches!(err("mongodb://:pw@h"), ConnectionStringError::EmptyUsername));
    assert!(!format!("{:?}", ok("mongodb://u:hunter2@h")).contains("hunter2"));
}

#[test]
fn auth_database() {
    assert_eq!(ok("mongodb://h/admin%3F?w=1").database(), Some("admin?"));
    assert_eq!(ok("mongodb://h/some,db").database(), Some("some,db"));
    assert_eq!(ok("mongodb://h/db.coll").database(), Some("db.coll"));
    assert_eq!(ok("mongodb://h/").database(), None);
    assert_eq!(ok("mongodb://h/?w=1").database(), None);
    for (uri, c) in [
        ("mongodb://h/a%2Fb", '/'),
        ("mongodb://h/a%5Cb", '\\'),
        ("mongodb://h/a%20b", ' '),
        ("mongodb://h/a%22b", '"'),
        ("mongodb://h/%24external", '$'),
        ("mongodb://h/tmp/x", '/'),
    ] {
        match err(uri) {
            ConnectionStringError::InvalidDatabaseName { character, .. } => assert_eq!(character, c, "{uri}"),
            e => panic!("{uri}: {e:?}"),
        }
    }
}

#[test]
fn option_syntax() {
    let cs = ok("mongodb://h/?APPNAME=my%20app&&replicaSet=rs&");
    assert_eq!(cs.options().app_name.as_deref(), Some("my app"));
    assert_eq!(cs.options().replica_set.as_deref(), Some("rs"));
    assert!(cs.warnings().is_empty());
    assert_eq!(
        err("mongodb://example.com/?w").to_string(),
        "connection string option \"w\" has no value: expected key=value"
    );
    // Values are decoded before key:value lists are split, so an encoded comma splits.
    let cs = ok("mongodb://h?authMechanismProperties=TOKEN_RESOURCE:mongodb://a%2Cb,ENVIRONMENT:azure");
    assert_eq!(cs.options().auth_mechanism_properties, None);
    assert_eq!(cs.warnings().len(), 1);
    let cs = ok("mongodb://h?authMechanismProperties=TOKEN_RESOURCE:mongodb://a,ENVIRONMENT:azure");
    assert_eq!(
        cs.options().auth_mechanism_properties.as_deref(),
        Some(&[("TOKEN_RESOURCE".into(), "mongodb://a".into()), ("ENVIRONMENT".into(), "azure".into())][..])
    );
}

#[test]
fn warnings() {
    let cs = ok("mongodb://h/?foo=bar&maxIdleTimeMS=&journal=&fsync=ifPossible&replicaSet=a&replicaSet=b");
    let shown: Vec<String> = cs.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "unsupported option 'foo' ignored",
            "unsupported value \"\" for option 'maxIdleTimeMS' ignored: expected a non-negative integer",
            "unsupported value \"\" for option 'journal' ignored: expected \"true\" or \"false\"",
            "unsupported option 'fsync' ignored",
            "option 'replicaSet' given more than once; the last valid value is used",
        ]
    );
    assert_eq!(cs.options().replica_set.as_deref(), Some("b"));
}

#[test]
fn typed_options() {
    let cs = ok("mongodb://h/?heartbeatFrequencyMS=500&localThresholdMS=0&serverSelectionTimeoutMS=15000\
         &connectTimeoutMS=0&socketTimeoutMS=7500&serverMonitoringMode=poll&readPreference=secondaryPreferred\
         &readPreferenceTags=dc:ny,rack:1&readPreferenceTags=&maxStalenessSeconds=120&appName=app\
         &compressors=snappy,zlib&zlibCompressionLevel=-1&w=majority&wTimeoutMS=9000000000&journal=true\
         &authMechanism=SCRAM-SHA-256&authSource=admin&maxPoolSize=0&minPoolSize=1&maxConnecting=2\
         &tls=true&tlsCAFile=ca.pem&directConnection=true&retryWrites=false&timeoutMS=0");
    let o = cs.options();
    assert!(cs.warnings().is_empty(), "{:?}", cs.warnings());
    assert_eq!(o.heartbeat_frequency, Some(Duration::from_millis(500)));
    assert_eq!(o.local_threshold, Some(Duration::ZERO));
    assert_eq!(o.server_selection_timeout, Some(Duration::from_secs(15)));
    assert_eq!(o.connect_timeout, Some(Duration::ZERO));
    assert_eq!(o.socket_timeout, Some(Duration::from_millis(7500)));
    assert_eq!(o.server_monitoring_mode, Some(ServerMonitoringMode::Poll));
    assert_eq!(o.read_preference, Some(ReadPreferenceMode::SecondaryPreferred));
    assert_eq!(
        o.read_preference_tags,
        [TagSet(vec![("dc".into(), "ny".into()), ("rack".into(), "1".into())]), TagSet(vec![])]
    );
    assert_eq!(o.max_staleness, Some(Duration::from_secs(120)));
    assert_eq!(o.compressors, Some(vec![Compressor::Snappy, Compressor::Zlib]));
    assert_eq!(o.zlib_compression_level, Some(-1));
    assert_eq!(o.w, Some(WriteConcernW::Majority));
    assert_eq!(o.w_timeout, Some(Duration::from_millis(9_000_000_000)));
    assert_eq!(o.auth_mechanism, Some(AuthMechanism::ScramSha256));
    assert_eq!((o.max_pool_size, o.min_pool_size, o.max_connecting), (Some(0), Some(1), Some(2)));
    assert_eq!(o.direct_connection, Some(true));
    assert_eq!(o.timeout, Some(Duration::ZERO));
    assert!(cs.tls_enabled());
    assert!(!ok("mongodb://h").tls_enabled());
}

#[test]
fn srv_rules() {
    let cs = ok("mongodb+srv://Test1.Example.COM/?srvMaxHosts=2&srvServiceName=custom");
    assert_eq!(cs.srv_host(), Some("test1.example.com"));
    assert!(cs.hosts().is_empty());
    assert!(cs.tls_enabled());
    assert_eq!(cs.options().tls, Some(true));
    assert_eq!(ok("mongodb+srv://a.b.c/?tls=false").options().tls, Some(false));
    assert!(ok("mongodb+srv://localhost").is_srv());
    assert!(ok("mongodb+srv://mongo.local").is_srv());
    assert_eq!(ok("mongodb+srv://a.b.c/?directConnection=false").options().direct_connection, Some(false));

    assert!(matches!(err("mongodb+srv://a.b.c,d.b.c"), ConnectionStringError::SrvMultipleHosts { .. }));
    assert!(matches!(err("mongodb+srv://a.b.c:27018"), ConnectionStringError::SrvWithPort { .. }));
    for bad in
        ["mongodb+srv://[::1]", "mongodb+srv://%2Ftmp%2Fm.sock", "mongodb+srv://a..b", "mongodb+srv://.a"]
    {
        assert!(matches!(err(bad), ConnectionStringError::InvalidSrvHost { .. }), "{bad}");
    }
    assert_eq!(
        err("mongodb+srv://a.b.c/?directConnection=true").to_string(),
        "option 'directConnection=true' cannot be used with mongodb+srv, which may resolve to several hosts"
    );
    assert_eq!(
        err("mongodb://a/?SRVMaxHosts=2").to_string(),
        "option 'SRVMaxHosts' is only valid in a mongodb+srv connection string"
    );
    assert!(matches!(
        err("mongodb://a/?srvServiceName=x"),
        ConnectionStringError::SrvOptionWithoutSrv { .. }
    ));
    assert!(err("mongodb+srv://a.b.c/?srvMaxHosts=2&replicaSet=x").to_string().contains("srvMaxHosts=2"));
    assert!(matches!(
        err("mongodb+srv://a.b.c/?srvMaxHosts=1&loadBalanced=true"),
        ConnectionStringError::ConflictingOptions { .. }
    ));
    assert!(
        ConnectionString::parse("mongodb+srv://a.b.c/?srvMaxHosts=0&loadBalanced=true&replicaSet=x").is_err()
    );
    ok("mongodb+srv://a.b.c/?srvMaxHosts=0&replicaSet=x");
    // An invalid service name is a warning, and the default is used.
    let cs = ok("mongodb+srv://a.b.c/?srvServiceName=bad_name");
    assert_eq!(cs.warnings().len(), 1);
    assert_eq!(cs.srv_query().unwrap().srv_name(), "_mongodb._tcp.a.b.c");
}

#[test]
fn topology_conflicts() {
    assert_eq!(
        err("mongodb://a,b/?directConnection=true").to_string(),
        "option 'directConnection=true' requires exactly one host, found 2"
    );
    ok("mongodb://a,b/?directConnection=false");
    ok("mongodb://a/?directConnection=true&replicaSet=rs");
    assert!(matches!(
        err("mongodb://a,b/?loadBalanced=true"),
        ConnectionStringError::OptionConflictsWithHosts { .. }
    ));
    assert_eq!(
        err("mongodb://a/?loadBalanced=true&replicaSet=rs").to_string(),
        "conflicting options: 'loadBalanced=true' and 'replicaSet=rs' may not be given together"
    );
    assert!(err("mongodb://a/?loadBalanced=true&directConnection=true")
        .to_string()
        .contains("directConnection"));
    ok("mongodb://a/?loadBalanced=true&directConnection=false");
}

#[test]
fn proxy_rules() {
    ok("mongodb://h/?proxyHost=p&proxyPort=1080&proxyUsername=u&proxyPassword=pw");
    assert_eq!(
        err("mongodb://h/?proxyPort=1080").to_string(),
        "option 'proxyPort' requires option 'proxyHost'"
    );
    assert!(err("mongodb://h/?proxyHost=p&proxyUsername=u").to_string().contains("proxyPassword"));
    assert!(err("mongodb://h/?proxyHost=p&proxyPassword=x").to_string().contains("proxyUsername"));
    assert_eq!(
        err("mongodb://h/?proxyHost=a&proxyhost=b").to_string(),
        "option 'proxyhost' may be given only once"
    );
    let long = "x".repeat(256);
    let e = err(&format!("mongodb://h/?proxyHost=p&proxyUsername=u&proxyPassword={long}"));
    assert!(!e.to_string().contains(&long));
}

#[test]
fn bounds() {
    let many = vec!["h"; MAX_HOSTS + 1].join(",");
    assert!(matches!(
        err(&format!("mongodb://{many}")),
        ConnectionStringError::TooManyHosts { count } if count == MAX_HOSTS + 1
    ));
    let max = vec!["h"; MAX_HOSTS].join(",");
    assert_eq!(ok(&format!("mongodb://{max}")).hosts().len(), MAX_HOSTS);
    let long = format!("mongodb://h/?appName={}", "a".repeat(MAX_LENGTH));
    assert!(matches!(err(&long), ConnectionStringError::TooLong { .. }));
    assert!(matches!(
        err(&format!("mongodb://{}", "a".repeat(2000))),
        ConnectionStringError::InvalidHost { reason: AddressError::TooLong(2000), .. }
    ));
}

#[test]
fn display_hides_credentials() {
    let cs = ok("mongodb://u:secret@A:1,b/db?replicaSet=rs");
    assert_eq!(cs.to_string(), "mongodb://a:1,b:27017/db");
    assert_eq!(ok("mongodb+srv://x.y.z").to_string(), "mongodb+srv://x.y.z/");
    assert_eq!("mongodb://a".parse::<ConnectionString>().unwrap().hosts().len(), 1);
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = ConnectionString::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_uri_like_input(
        scheme in prop::sample::select(vec!["mongodb://", "mongodb+srv://", "MONGODB://", "mongodb:/"]),
        body in "[a-zA-Z0-9%:@/?&=,.\\[\\]_+!$ü-]{0,80}",
    ) {
        let uri = format!("{scheme}{body}");
        if let Ok(cs) = ConnectionString::parse(&uri) {
            // Whatever parses is internally consistent.
            prop_assert!(cs.hosts().len() <= MAX_HOSTS);
            prop_assert_eq!(cs.is_srv(), cs.hosts().is_empty());
            let _ = cs.to_string();
            if let Some(q) = cs.srv_query() {
                prop_assert!(q.srv_name().ends_with(q.txt_name()));
            }
        }
    }

    #[test]
    fn options_never_panic(key in "[a-zA-Z]{1,30}", value in ".{0,40}") {
        let uri = format!("mongodb://h/?{key}={value}");
        let _ = ConnectionString::parse(&uri);
        let known = [
            "w", "journal", "maxStalenessSeconds", "readPreferenceTags", "authMechanismProperties",
            "heartbeatFrequencyMS", "zlibCompressionLevel", "wTimeoutMS", "proxyPort", "srvServiceName",
        ];
        for k in known {
            let _ = ConnectionString::parse(&format!("mongodb+srv://a.b.c/?{k}={value}"));
        }
    }
}

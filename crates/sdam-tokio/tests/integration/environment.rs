//! The handshake metadata of a tokio client: `client.env` read from the process environment,
//! and appendMetadata.

use std::process::Command;

use sdam::{DriverInfo, MetadataError, ServerAddress, TopologyConfig};
use sdam_tokio::Client;

fn unreachable_config() -> TopologyConfig {
    TopologyConfig::with_seeds([ServerAddress::parse("127.0.0.1:1").unwrap()])
}

/// Run by [`client_env_is_read_from_the_process_environment`] in a child process whose
/// environment holds FaaS variables; does nothing when run directly.
#[tokio::test]
async fn child_reports_its_client_env() {
    let Ok(expected) = std::env::var("SDAM_TEST_EXPECTED_ENV") else { return };
    let client = Client::new(unreachable_config()).unwrap();
    let env = client.client_metadata().get_document("env").cloned().unwrap_or_default();
    assert_eq!(env.to_string(), expected);
    client.close().await;
}

/// The adapter fills `client.env` from the process environment (here a child process's, so
/// this process's environment is never changed): AWS Lambda with its region and memory, and
/// the Kubernetes orchestrator beside it (handshake README, prose test 1, case 9).
#[tokio::test]
async fn client_env_is_read_from_the_process_environment() {
    // The container runtime is the machine's own: Docker when `/.dockerenv` exists.
    let runtime = if std::path::Path::new("/.dockerenv").exists() { r#""runtime": "docker", "# } else { "" };
    let expected = format!(
        r#"{{ "name": "aws.lambda", "memory_mb": 1024, "region": "us-east-2", "container": {{ {runtime}"orchestrator": "kubernetes" }} }}"#
    );
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", "environment::child_reports_its_client_env", "--test-threads=1"]);
    for var in ["VERCEL", "FUNCTIONS_WORKER_RUNTIME", "K_SERVICE", "FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API"]
    {
        child.env_remove(var);
    }
    let out = child
        .env("SDAM_TEST_EXPECTED_ENV", &expected)
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_java8")
        .env("AWS_REGION", "us-east-2")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("KUBERNETES_SERVICE_HOST", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// appendMetadata through the adapter: appended to the driver fields, visible in the document
/// new connections send, duplicates ignored, the delimiter refused.
#[tokio::test]
async fn append_metadata_through_the_client() {
    let client = Client::new(unreachable_config()).unwrap();
    let before = client.client_metadata();
    assert_eq!(
        client.append_metadata(DriverInfo::new("library", Some("1.2"), Some("Library Platform"))),
        Ok(true)
    );
    assert_eq!(
        client.append_metadata(DriverInfo::new("library", Some("1.2"), Some("Library Platform"))),
        Ok(false)
    );
    let after = client.client_metadata();
    let driver = after.get_document("driver").unwrap();
    assert!(driver.get_str("name").unwrap().ends_with("|library"));
    assert!(driver.get_str("version").unwrap().ends_with("|1.2"));
    assert!(after.get_str("platform").unwrap().ends_with("|Library Platform"));
    assert_eq!(after.get_document("os").ok(), before.get_document("os").ok());
    assert!(matches!(
        client.append_metadata(DriverInfo::new("a|b", None, None)),
        Err(MetadataError::ContainsDelimiter { .. })
    ));
    client.close().await;
}

//! The handshake's `client.env` from the process environment (handshake.md, "client.env"):
//! the one place the adapters read environment variables and look for `/.dockerenv`. The
//! rules (which variables, their precedence and validity) are the core's
//! ([`sdam::FaasEnv::detect`], [`sdam::ContainerEnv::detect`]); the core then decides what
//! they mean (`serverMonitoringMode=auto` polls on a FaaS).

use std::path::Path;

use sdam::ClientMetadata;

/// The file whose existence means a Docker container (handshake.md, "Container").
pub const DOCKERENV_PATH: &str = "/.dockerenv";

/// Fills `metadata.env` and `metadata.container` from the process environment, unless the
/// configuration set either already (an explicit value wins).
pub fn detect_environment(metadata: &mut ClientMetadata) {
    detect_environment_with(metadata, |name| std::env::var(name).ok(), Path::new(DOCKERENV_PATH).exists());
}

/// [`detect_environment`] with the environment given: `lookup(name)` is the value of the
/// variable `name`, `dockerenv_exists` whether `/.dockerenv` exists. For tests, which must
/// not change the process environment.
pub fn detect_environment_with(
    metadata: &mut ClientMetadata,
    lookup: impl Fn(&str) -> Option<String>,
    dockerenv_exists: bool,
) {
    if metadata.env.is_none() && metadata.container.is_none() {
        metadata.detect_environment(lookup, dockerenv_exists);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdam::FaasEnv;

    fn lambda(name: &str) -> Option<String> {
        match name {
            "AWS_EXECUTION_ENV" => Some("AWS_Lambda_java8".into()),
            "AWS_REGION" => Some("us-east-2".into()),
            "KUBERNETES_SERVICE_HOST" => Some("10.0.0.1".into()),
            _ => None,
        }
    }

    #[test]
    fn fills_the_environment_unless_the_configuration_set_it() {
        let mut m = ClientMetadata::default();
        detect_environment_with(&mut m, lambda, true);
        let env = m.env.clone().expect("a FaaS");
        assert_eq!((env.name.as_str(), env.region.as_deref()), ("aws.lambda", Some("us-east-2")));
        let container = m.container.clone().expect("a container");
        assert_eq!(container.runtime.as_deref(), Some("docker"));
        assert_eq!(container.orchestrator.as_deref(), Some("kubernetes"));

        let mut preset = ClientMetadata::default();
        preset.env = Some(FaasEnv::named("azure.func"));
        detect_environment_with(&mut preset, lambda, true);
        assert_eq!(preset.env.map(|e| e.name), Some("azure.func".to_owned()));
        assert_eq!(preset.container, None, "an explicit environment is kept as given");
    }
}

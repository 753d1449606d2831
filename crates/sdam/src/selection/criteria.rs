//! What an operation asks of server selection: a read with a read preference or a write, an
//! optional application-provided selector, and the servers to avoid on a retry.

use std::fmt;
use std::sync::Arc;

use crate::address::ServerAddress;
use crate::read_preference::ReadPreference;

use super::ServerList;

/// An application-provided server selector (server-selection.md, "serverSelector").
///
/// It receives the servers that are suitable for the operation (after the read preference
/// and before the latency window) and removes those it does not want, in place. Servers it
/// adds that were not in the list are ignored, so a selector can only narrow the choice.
///
/// Any `Fn(&mut ServerList<'_>) + Send + Sync` closure is a selector.
pub trait ServerSelector: Send + Sync {
    /// Keeps in `servers` only those the application still considers suitable.
    fn filter(&self, servers: &mut ServerList<'_>);

    /// A short description for logs and explanations.
    fn name(&self) -> &str {
        "application-provided selector"
    }
}

impl<F> ServerSelector for F
where
    F: Fn(&mut ServerList<'_>) + Send + Sync,
{
    fn filter(&self, servers: &mut ServerList<'_>) {
        self(servers);
    }
}

/// A selector with a name of its own, for logs and explanations.
struct Named<F> {
    name: String,
    f: F,
}

impl<F> ServerSelector for Named<F>
where
    F: Fn(&mut ServerList<'_>) + Send + Sync,
{
    fn filter(&self, servers: &mut ServerList<'_>) {
        (self.f)(servers);
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The kind of operation a server is selected for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A read, with its read preference.
    Read(ReadPreference),
    /// A write.
    Write,
}

/// Everything server selection needs to know about one operation.
///
/// ```
/// use sdam::selection::SelectionCriteria;
/// use sdam::{ReadPreference, ReadPreferenceMode};
///
/// let criteria = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::Nearest))
///     .with_selector("highest port", |servers: &mut sdam::selection::ServerList<'_>| {
///         let best = servers.iter().filter_map(|sd| sd.address.port()).max();
///         servers.retain(|sd| sd.address.port() == best);
///     });
/// assert_eq!(criteria.to_string(), "read nearest; selector: highest port");
/// ```
#[derive(Clone)]
pub struct SelectionCriteria {
    operation: Operation,
    selector: Option<Arc<dyn ServerSelector>>,
    deprioritized: Vec<ServerAddress>,
}

impl SelectionCriteria {
    /// A read with `read_preference`.
    pub fn read(read_preference: ReadPreference) -> Self {
        Self { operation: Operation::Read(read_preference), selector: None, deprioritized: Vec::new() }
    }

    /// A write.
    pub fn write() -> Self {
        Self { operation: Operation::Write, selector: None, deprioritized: Vec::new() }
    }

    /// Adds an application-provided selector, shown in logs as `name`.
    pub fn with_selector<F>(mut self, name: impl Into<String>, selector: F) -> Self
    where
        F: Fn(&mut ServerList<'_>) + Send + Sync + 'static,
    {
        self.selector = Some(Arc::new(Named { name: name.into(), f: selector }));
        self
    }

    /// Adds an application-provided selector given as a [`ServerSelector`] value.
    pub fn with_server_selector(mut self, selector: Arc<dyn ServerSelector>) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Marks servers as deprioritized: a retry avoids them unless nothing else is suitable
    /// (server-selection.md, "Server Selection Algorithm", step 3).
    pub fn with_deprioritized(mut self, servers: impl IntoIterator<Item = ServerAddress>) -> Self {
        for address in servers {
            self.deprioritize(address);
        }
        self
    }

    /// Marks one more server as deprioritized (the server an attempt just failed on).
    pub fn deprioritize(&mut self, address: ServerAddress) {
        if !self.deprioritized.contains(&address) {
            self.deprioritized.push(address);
        }
    }

    /// The operation.
    pub fn operation(&self) -> &Operation {
        &self.operation
    }

    /// The read preference, for a read.
    pub fn read_preference(&self) -> Option<&ReadPreference> {
        match &self.operation {
            Operation::Read(rp) => Some(rp),
            Operation::Write => None,
        }
    }

    /// Whether this is a write.
    pub fn is_write(&self) -> bool {
        matches!(self.operation, Operation::Write)
    }

    /// The application-provided selector, if any.
    pub fn selector(&self) -> Option<&dyn ServerSelector> {
        self.selector.as_deref()
    }

    /// The deprioritized servers.
    pub fn deprioritized(&self) -> &[ServerAddress] {
        &self.deprioritized
    }

    /// Whether `address` is deprioritized.
    pub fn is_deprioritized(&self, address: &ServerAddress) -> bool {
        self.deprioritized.contains(address)
    }
}

impl fmt::Display for SelectionCriteria {
    /// `read secondary tags=[{dc:ny}]`, `write`, with `; selector: <name>` and
    /// `; deprioritized: [a:27017]` when present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operation {
            Operation::Read(rp) => write!(f, "read {rp}")?,
            Operation::Write => f.write_str("write")?,
        }
        if let Some(selector) = &self.selector {
            write!(f, "; selector: {}", selector.name())?;
        }
        if !self.deprioritized.is_empty() {
            f.write_str("; deprioritized: [")?;
            for (i, a) in self.deprioritized.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SelectionCriteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectionCriteria")
            .field("operation", &self.operation)
            .field("selector", &self.selector.as_ref().map(|s| s.name()))
            .field("deprioritized", &self.deprioritized)
            .finish()
    }
}

impl From<ReadPreference> for SelectionCriteria {
    fn from(rp: ReadPreference) -> Self {
        Self::read(rp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadPreferenceMode;

    #[test]
    fn display_and_accessors() {
        let a = ServerAddress::parse("a").unwrap();
        let mut c = SelectionCriteria::write().with_deprioritized([a.clone(), a.clone()]);
        assert_eq!(c.deprioritized().len(), 1, "duplicates are ignored");
        c.deprioritize(ServerAddress::parse("b:1").unwrap());
        assert_eq!(c.to_string(), "write; deprioritized: [a:27017, b:1]");
        assert!(c.is_write() && c.read_preference().is_none() && c.is_deprioritized(&a));
        let r = SelectionCriteria::from(ReadPreference::new(ReadPreferenceMode::Secondary))
            .with_selector("none", |s: &mut ServerList<'_>| s.clear());
        assert_eq!(r.to_string(), "read secondary; selector: none");
        assert!(format!("{r:?}").contains("\"none\""));
        let anonymous = SelectionCriteria::write()
            .with_server_selector(Arc::new(|_: &mut ServerList<'_>| {}) as Arc<dyn ServerSelector>);
        assert_eq!(anonymous.to_string(), "write; selector: application-provided selector");
    }
}

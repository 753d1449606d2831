//! Replica set administration commands the unified tests send: `replSetStepDown` (the
//! primary steps down and another electable member wins the election, as
//! [`Cluster::step_down`](crate::Cluster::step_down) + [`Cluster::elect`](crate::Cluster::elect)
//! do) and `replSetFreeze` (accepted: no scripted member is ever frozen). Connections stay open,
//! as on servers since 4.2.

use bson::{doc, Document, RawDocument};

use crate::member::{Deployment, Role, State};

/// Runs `name` on member `index` if it is one of these commands; the reply.
pub(crate) fn apply(state: &mut State, index: usize, name: &str, body: &RawDocument) -> Option<Document> {
    match name {
        "replSetStepDown" | "replSetFreeze" => {}
        _ => return None,
    }
    if !matches!(state.deployment, Deployment::ReplicaSet(_)) {
        return Some(error(76, "NoReplicationEnabled", "not running with --replSet"));
    }
    if body.get_str("$db").ok() != Some("admin") {
        return Some(error(
            13,
            "Unauthorized",
            &format!("{name} may only be run against the admin database"),
        ));
    }
    if name == "replSetFreeze" {
        return Some(doc! { "ok": 1.0 });
    }
    if state.members.get(index).map(|m| m.role) != Some(Role::Primary) {
        return Some(error(10107, "NotWritablePrimary", "not primary so can't step down"));
    }
    // The first other electable member that is up wins the election (a new term).
    let Some(next) = state
        .members
        .iter()
        .enumerate()
        .position(|(i, m)| i != index && m.up && m.in_config && m.role == Role::Secondary)
    else {
        return Some(error(262, "ExceededTimeLimit", "no electable secondary caught up"));
    };
    state.members[index].role = Role::Secondary;
    state.members[next].role = Role::Primary;
    state.new_term();
    state.bump_all();
    Some(doc! { "ok": 1.0 })
}

fn error(code: i32, name: &str, message: &str) -> Document {
    doc! { "ok": 0.0, "code": code, "codeName": name, "errmsg": message }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use crate::{MemberSpec, RawClient, ReplicaSet, Role};

    #[test]
    fn step_down_elects_another_member() {
        let set = ReplicaSet::builder("rs0")
            .member(MemberSpec::new(Role::Primary))
            .member(MemberSpec::new(Role::Secondary))
            .start()
            .unwrap();
        let mut primary = RawClient::connect(set.address(0).unwrap().to_string()).unwrap();
        let reply = primary.command(&rawdoc! { "replSetStepDown": 30, "$db": "admin" }).unwrap();
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply:?}");
        assert_eq!(set.role(0).unwrap(), Role::Secondary);
        assert_eq!(set.role(1).unwrap(), Role::Primary);
        // The connection stays open; the old primary now refuses to step down.
        let again = primary.command(&rawdoc! { "replSetStepDown": 30, "$db": "admin" }).unwrap();
        assert_eq!(again.get_i32("code").ok(), Some(10107));
        let frozen = primary.command(&rawdoc! { "replSetFreeze": 0, "$db": "admin" }).unwrap();
        assert_eq!(frozen.get_f64("ok").ok(), Some(1.0));
    }
}

//! Posture history: snapshots of the whole enterprise tree, taken by the scheduled job (once
//! per slot of `--snapshot-interval` across the replicas sharing the store) or by
//! CreateSnapshot, read back by GetPosture with `as_of`, and listed.

use std::{collections::HashMap, time::Duration};

use assurance_proto::gateway::v1::{
    CreateSnapshotRequest, GetSnapshotRequest, ListSnapshotsRequest, ListSnapshotsResponse,
    Posture, PostureNode, PostureSnapshot, SnapshotTrigger,
};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    idempotency::RequestKey,
    page,
    serve::Shutdown,
    time::to_timestamp,
    validate::{Violations, name_id},
};
use prost::Message;
use tonic::Request;

use super::{
    DAY_MICROS, DEFAULT_PERIOD_DAYS, MAX_TOP_N, PostureApi, Scope, on_behalf, reads_incidents,
    time_field, upstream::OnBehalf,
};
use crate::store::snapshot::{
    Claim, NewSnapshot, posture_snapshot::Model as Snapshot, snapshot_node::Model as Node,
};

/// How long a replica's claim of a scheduled slot holds before another may take it over.
const LEASE_MICROS: i64 = 120_000_000;
/// The longest the job sleeps between looks at the clock.
const MAX_TICK: Duration = Duration::from_secs(1);
const COLLECTION: &str = "postureSnapshots";

/// The gateway's `system` principal running `job`, acting for `person` when one asked.
fn system_caller(job: &str, person: Option<&str>) -> Caller {
    let mut caller = Caller::system("gateway", job);
    caller.on_behalf_of = person.map(str::to_string);
    caller
}

/// The resource of a stored snapshot.
fn resource(row: &Snapshot) -> ApiResult<PostureSnapshot> {
    let mut snapshot = PostureSnapshot::decode(row.header.as_slice())
        .map_err(|e| ApiError::Internal(format!("snapshot {} header: {e}", row.id)))?;
    snapshot.name = format!("{COLLECTION}/{}", row.id);
    Ok(snapshot)
}

/// The nodes of `root`'s tree in depth-first order, each without its children.
fn flatten(snapshot_id: &str, root: PostureNode) -> Vec<Node> {
    fn walk(snapshot_id: &str, parent: &str, mut node: PostureNode, out: &mut Vec<Node>) {
        let children = std::mem::take(&mut node.children);
        out.push(Node {
            snapshot_id: snapshot_id.to_string(),
            scope: node.scope.clone(),
            parent: parent.to_string(),
            position: i32::try_from(out.len()).unwrap_or(i32::MAX),
            kind: node.kind,
            figures: node.encode_to_vec(),
        });
        let scope = node.scope;
        for child in children {
            walk(snapshot_id, &scope, child, out);
        }
    }
    let mut out = Vec::new();
    walk(snapshot_id, "", root, &mut out);
    out
}

/// The tree under `scope` rebuilt from a snapshot's `nodes` (in tree order), if it was there.
fn subtree(nodes: Vec<Node>, scope: &str) -> ApiResult<Option<PostureNode>> {
    let mut root = None;
    let mut children: HashMap<String, Vec<PostureNode>> = HashMap::new();
    for row in nodes {
        let node = PostureNode::decode(row.figures.as_slice()).map_err(|e| {
            ApiError::Internal(format!(
                "snapshot {} node {}: {e}",
                row.snapshot_id, row.scope
            ))
        })?;
        if row.scope == scope {
            root = Some(node);
        } else {
            children.entry(row.parent).or_default().push(node);
        }
    }
    fn attach(node: &mut PostureNode, children: &mut HashMap<String, Vec<PostureNode>>) {
        if let Some(kids) = children.remove(&node.scope) {
            node.children = kids;
            for child in &mut node.children {
                attach(child, children);
            }
        }
    }
    Ok(root.map(|mut root| {
        attach(&mut root, &mut children);
        root
    }))
}

/// Cuts the top lists of every node of `node`'s tree to `top_n` (0 keeps them), and drops
/// the top incidents when `incidents` is false.
fn trim(node: &mut PostureNode, top_n: usize, incidents: bool) {
    if let Some(risks) = &mut node.risks
        && top_n > 0
    {
        risks.top_risks.truncate(top_n);
    }
    if let Some(summary) = &mut node.incidents {
        if !incidents {
            summary.top_incidents.clear();
        } else if top_n > 0 {
            summary.top_incidents.truncate(top_n);
        }
    }
    for child in &mut node.children {
        trim(child, top_n, incidents);
    }
}

impl PostureApi {
    /// Computes the enterprise tree now, as the gateway's system principal (acting for
    /// `caller`'s person when a person asked), and stores it as a snapshot audited as
    /// `caller`'s.
    async fn take_snapshot(
        &self,
        caller: &Caller,
        on: OnBehalf,
        trigger: SnapshotTrigger,
        key: Option<RequestKey>,
        slot: Option<(i64, String)>,
    ) -> ApiResult<PostureSnapshot> {
        let now = self.clock.now_micros();
        let start = now.saturating_sub(DEFAULT_PERIOD_DAYS * DAY_MICROS);
        let top_n = i32::try_from(self.settings.top_n).unwrap_or(MAX_TOP_N);
        let posture = self
            .compute(&on, &Scope::Enterprise, (start, now), top_n, now)
            .await?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let nodes = flatten(&id, posture.root.unwrap_or_default());
        let header = PostureSnapshot {
            name: String::new(),
            take_time: Some(to_timestamp(now)),
            period_start: posture.period_start,
            period_end: posture.period_end,
            trigger: trigger as i32,
            created_by: caller.person().to_string(),
            node_count: i64::try_from(nodes.len()).unwrap_or(i64::MAX),
            missing: posture.missing,
            appetite_versions: posture.appetite_versions,
        };
        let row = Snapshot {
            id,
            take_time: now,
            header: header.encode_to_vec(),
        };
        let stored = self
            .store
            .save_snapshot(
                NewSnapshot {
                    snapshot: row,
                    nodes,
                    slot,
                },
                key,
                caller,
            )
            .await?;
        resource(&stored)
    }

    pub(super) async fn snapshot_on_demand(
        &self,
        request: Request<CreateSnapshotRequest>,
    ) -> ApiResult<PostureSnapshot> {
        let asked = on_behalf(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        v.finish()?;
        let key =
            RequestKey::for_request("CreateSnapshot", &asked.caller, &req, |r| &mut r.request_id);
        let on = OnBehalf {
            caller: system_caller("CreateSnapshot", Some(asked.caller.person())),
            authorization: asked.authorization,
        };
        self.take_snapshot(&asked.caller, on, SnapshotTrigger::OnDemand, key, None)
            .await
    }

    pub(super) async fn read_snapshot(
        &self,
        request: Request<GetSnapshotRequest>,
    ) -> ApiResult<PostureSnapshot> {
        let req = request.into_inner();
        let id = snapshot_id("name", &req.name)?;
        let row = self
            .store
            .snapshot(id)
            .await?
            .ok_or_else(|| ApiError::not_found(&req.name))?;
        resource(&row)
    }

    pub(super) async fn snapshot_page(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> ApiResult<ListSnapshotsResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        let size = v.absorb("page_size", page::page_size("page_size", req.page_size));
        let start = time_field(&mut v, "start_time", req.start_time.as_ref());
        let end = time_field(&mut v, "end_time", req.end_time.as_ref());
        if let (Some(start), Some(end)) = (start, end)
            && start > end
        {
            v.add("start_time", "must not be after end_time");
        }
        v.finish()?;
        let Some(size) = size else {
            return Err(ApiError::Internal("page_size validated but absent".into()));
        };
        let bounds = format!("{start:?}..{end:?}");
        let fingerprint = page::query_fingerprint(&["ListSnapshots", &bounds]);
        let after = match page::decode("page_token", &req.page_token, &fingerprint, 2)?.as_deref() {
            Some([page::Key::Int(time), page::Key::Text(id)]) => Some((*time, id.clone())),
            Some(_) => {
                return Err(ApiError::invalid(
                    "page_token",
                    "is not a page token issued by this service",
                ));
            }
            None => None,
        };
        let mut rows = self.store.snapshots((start, end), after, size + 1).await?;
        let next_page_token = page::finish(&mut rows, size, &fingerprint, |r| {
            vec![page::Key::Int(r.take_time), page::Key::Text(r.id.clone())]
        });
        Ok(ListSnapshotsResponse {
            snapshots: rows.iter().map(resource).collect::<ApiResult<_>>()?,
            next_page_token,
        })
    }

    /// GetPosture from the latest snapshot taken at or before `at`: the tree under `scope`
    /// as it was, top lists cut to `top_n` (0 keeps them), without the top incidents for a
    /// caller who may not read incidents.
    pub(super) async fn posture_as_of(
        &self,
        caller: &Caller,
        scope: &Scope,
        at: i64,
        top_n: i32,
    ) -> ApiResult<Posture> {
        let Some(row) = self.store.snapshot_at(at).await? else {
            return Err(ApiError::not_found(format!(
                "a posture snapshot taken at or before {} (take one with CreateSnapshot, or \
                 wait for the scheduled one)",
                to_timestamp(at)
            )));
        };
        let snapshot = resource(&row)?;
        let nodes = self.store.snapshot_nodes(&row.id).await?;
        let Some(mut root) = subtree(nodes, &scope.name())? else {
            return Err(ApiError::not_found(format!(
                "{} in {} (taken {}, before the scope was registered)",
                scope.name(),
                snapshot.name,
                to_timestamp(row.take_time)
            )));
        };
        trim(
            &mut root,
            usize::try_from(top_n).unwrap_or(0),
            reads_incidents(caller),
        );
        Ok(Posture {
            scope: scope.name(),
            root: Some(root),
            period_start: snapshot.period_start,
            period_end: snapshot.period_end,
            compute_time: snapshot.take_time,
            missing: snapshot.missing,
            appetite_versions: snapshot.appetite_versions,
            snapshot: snapshot.name,
        })
    }
}

/// The id of a snapshot name, or INVALID_ARGUMENT on `field`.
fn snapshot_id<'a>(field: &str, name: &'a str) -> ApiResult<&'a str> {
    if name.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    name_id(name, COLLECTION)
        .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| ApiError::invalid(field, "must be `postureSnapshots/{id}`"))
}

/// Takes the scheduled snapshots until `shutdown`: every tick (real time, at most a second)
/// it looks at the slot (`floor(time / interval)`) the gateway's clock is in, and takes that
/// slot's snapshot unless it was taken — by this replica or another sharing the store. A
/// zero `interval` turns the schedule off.
pub fn spawn_snapshots(api: PostureApi, interval: Duration, shutdown: Shutdown) {
    let Ok(interval_micros) = i64::try_from(interval.as_micros()) else {
        return;
    };
    if interval_micros == 0 {
        return;
    }
    let tick = interval.min(MAX_TICK);
    let holder = uuid::Uuid::now_v7().simple().to_string();
    tokio::spawn(async move {
        let caller = system_caller("TakeSnapshot", None);
        let on = OnBehalf {
            caller: caller.clone(),
            authorization: None,
        };
        let mut done = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.wait() => return,
            }
            let slot = api.clock.now_micros().div_euclid(interval_micros);
            if done == Some(slot) {
                continue;
            }
            match api.store.claim_slot(slot, &holder, LEASE_MICROS).await {
                Ok(Claim::Taken) => done = Some(slot),
                // Another replica is taking it; look again next tick in case it fails.
                Ok(Claim::Held) => {}
                Ok(Claim::Claimed) => match api
                    .take_snapshot(
                        &caller,
                        on.clone(),
                        SnapshotTrigger::Scheduled,
                        None,
                        Some((slot, holder.clone())),
                    )
                    .await
                {
                    Ok(snapshot) => {
                        tracing::info!(snapshot = %snapshot.name, slot, "scheduled posture snapshot taken");
                        done = Some(slot);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, slot, "scheduled posture snapshot failed; retrying next tick")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, slot, "posture snapshot slot not claimed; retrying next tick")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(scope: &str, children: Vec<PostureNode>) -> PostureNode {
        PostureNode {
            scope: scope.into(),
            display_name: format!("{scope} name"),
            children,
            ..Default::default()
        }
    }

    #[test]
    fn a_stored_tree_reads_back_whole_or_from_any_node() {
        let retail = node(
            "businessUnits/retail",
            vec![node("services/pos", vec![]), node("services/shop", vec![])],
        );
        let tree = node(
            "enterprise",
            vec![
                retail.clone(),
                node("businessUnits/corp", vec![node("services/hr", vec![])]),
                node("unassigned", vec![]),
            ],
        );
        let rows = flatten("s1", tree.clone());
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[0].parent, "");
        assert_eq!(rows[2].parent, "businessUnits/retail");
        assert_eq!(
            subtree(rows.clone(), "enterprise").expect("decodes"),
            Some(tree)
        );
        assert_eq!(
            subtree(rows.clone(), "businessUnits/retail").expect("decodes"),
            Some(retail)
        );
        assert_eq!(subtree(rows, "services/nope").expect("decodes"), None);
    }

    #[test]
    fn snapshot_names_are_checked() {
        assert_eq!(snapshot_id("name", "postureSnapshots/0192ab"), Ok("0192ab"));
        for bad in [
            "",
            "postureSnapshots/",
            "snapshots/1",
            "postureSnapshots/a/b",
            "postureSnapshots/a-b",
        ] {
            assert!(snapshot_id("name", bad).is_err(), "{bad}");
        }
    }
}

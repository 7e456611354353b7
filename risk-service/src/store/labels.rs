//! A risk's labels: the JSON copy on the risk row (read with the risk) and the indexed rows
//! the `labels.<key>` filter matches.

use std::collections::BTreeMap;

use assurance_runtime::ApiResult;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::entities::risk_label;

pub(super) fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

pub fn labels_from_json(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

pub(super) async fn write_labels(
    conn: &impl ConnectionTrait,
    risk_id: Uuid,
    labels: &BTreeMap<String, String>,
) -> ApiResult<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let rows = labels.iter().map(|(k, v)| {
        risk_label::Model {
            risk_id,
            key: k.clone(),
            value: v.clone(),
        }
        .into_active_model()
        .reset_all()
    });
    risk_label::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

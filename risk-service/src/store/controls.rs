//! The controls framework: the controls catalogue, the requirements each control satisfies
//! (indexed for the `framework` filter), risk ↔ control links, the catalogue import, and the
//! linked controls' effectiveness that an assessment may derive its control deficiency from.
//! Every change records its audit event in its own transaction.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    error::is_unique_violation,
    filter::{Op, equality_only},
    list::{EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    entities::{control, control_requirement, risk, risk_control},
    get_by_id, insert_new,
    listing::{keys_of, page_of},
    next_version, one_or_not_found, request_id_of,
    risks::{WhileOpen, lock_open_risk},
    write_version,
};
use crate::domain::{
    controls::{Effectiveness, Requirement, derived_deficiency},
    status::RiskStatus,
};

/// The name of a risk ↔ control link.
pub fn link_name(risk_id: Uuid, control_id: &str) -> String {
    format!("risks/{risk_id}/controlLinks/{control_id}")
}

/// The filter fields of `ListRiskControlLinks`.
pub static LINK_FILTER: FilterTable<risk_control::Column> = FilterTable(&[
    Field::new(
        "control",
        Kind::Id(risk_control::Column::ControlId, "controls/"),
    ),
    Field::new("linked_by", Kind::Text(risk_control::Column::LinkedBy)),
    Field::new("create_time", Kind::Time(risk_control::Column::CreateTime)),
]);

/// `order_by` of `ListRiskControlLinks`: by control id unless asked otherwise.
pub const LINK_SORTING: Sorting = Sorting {
    fields: &[("create_time", KeyType::Int)],
    default: &[],
    max_fields: 1,
    id: KeyType::Text,
};

/// The stored form of a control's requirements.
pub fn requirements_json(requirements: &[Requirement]) -> String {
    // Serialising plain strings cannot fail.
    serde_json::to_string(requirements).unwrap_or_else(|_| "[]".into())
}

/// The requirements of a stored control.
pub fn requirements_of(c: &control::Model) -> Vec<Requirement> {
    serde_json::from_str(&c.requirements).unwrap_or_default()
}

/// Replaces the requirement rows of control `id` (inside the writing transaction).
async fn write_requirements(
    conn: &impl ConnectionTrait,
    id: &str,
    requirements: &[Requirement],
    replace: bool,
) -> ApiResult<()> {
    if replace {
        control_requirement::Entity::delete_many()
            .filter(control_requirement::Column::ControlId.eq(id))
            .exec(conn)
            .await?;
    }
    if requirements.is_empty() {
        return Ok(());
    }
    let rows = requirements.iter().map(|r| {
        control_requirement::Model {
            control_id: id.to_string(),
            framework: r.framework.clone(),
            section: r.section.clone(),
        }
        .into_active_model()
        .reset_all()
    });
    control_requirement::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Whether two versions of a control say the same (ignoring version and times).
fn same_content(a: &control::Model, b: &control::Model) -> bool {
    a.title == b.title
        && a.description == b.description
        && a.owner == b.owner
        && a.design_effectiveness == b.design_effectiveness
        && a.operating_effectiveness == b.operating_effectiveness
        && a.last_test_time == b.last_test_time
        && requirements_of(a) == requirements_of(b)
}

async fn control_exists(conn: &impl ConnectionTrait, id: &str) -> ApiResult<()> {
    control::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("controls/{id}")))
}

/// What an import did, by control name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged",
            self.created.len(),
            self.updated.len(),
            self.unchanged.len()
        )
    }
}

impl Store {
    /// Creates a control (`version`, times are set here).
    pub async fn create_control(
        &self,
        mut c: control::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<control::Model> {
        caller.must_be_unscoped("change the controls catalogue")?;
        let request_id = request_id_of(&key);
        (c.version, c.create_time, c.update_time) = (1, now, now);
        let name = format!("controls/{}", c.id);
        let outcome = self
            .idempotent(key, async |tx| {
                insert_new(tx, c.clone().into_active_model().reset_all(), &name).await?;
                write_requirements(tx, &c.id, &requirements_of(&c), false).await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), c.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(m) => Ok(m),
            Outcome::Replayed(_) => self.get_control(&c.id).await,
        }
    }

    pub async fn get_control(&self, id: &str) -> ApiResult<control::Model> {
        get_by_id::<control::Entity>(self.connection(), id, &format!("controls/{id}")).await
    }

    /// A page of the catalogue in `list`'s filter and order.
    pub async fn list_controls(&self, list: &ListQuery) -> ApiResult<Vec<control::Model>> {
        let select = page_of(
            control::Entity::find(),
            list,
            control_column,
            control::Column::Id,
        )?;
        Ok(select.all(self.connection()).await?)
    }

    /// A page of the controls that meet `condition`, in id order.
    async fn controls_where(
        &self,
        condition: Condition,
        list: &ListQuery,
    ) -> ApiResult<Vec<control::Model>> {
        let matching = control::Entity::find().filter(condition);
        let (after, limit) = (list.after_text(), list.limit());
        Ok(db::page_after(
            self.connection(),
            matching,
            control::Column::Id,
            after,
            limit,
        )
        .await?)
    }

    /// Applies `patch` to a control (etag checked); its requirement rows follow.
    pub async fn update_control(
        &self,
        id: &str,
        expected_version: Option<i64>,
        caller: &Caller,
        now: i64,
        patch: impl Fn(&mut control::Model),
    ) -> ApiResult<control::Model> {
        caller.must_be_unscoped("change the controls catalogue")?;
        let name = format!("controls/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let locked = control::Entity::find_by_id(id).lock_exclusive();
        let current = one_or_not_found(locked, &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let next = next_version(&current, now, patch);
        write_version(&tx, &next, current.version, &name).await?;
        if next.requirements != current.requirements {
            write_requirements(&tx, id, &requirements_of(&next), true).await?;
        }
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Links a control to an open risk of the caller's scope. Linking a linked pair returns the
    /// existing link and changes nothing. Idempotent with a request `key`.
    pub async fn link_control(
        &self,
        risk_id: Uuid,
        control_id: &str,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<risk_control::Model> {
        let request_id = request_id_of(&key);
        let name = link_name(risk_id, control_id);
        let result = self
            .idempotent(key, async |tx| {
                lock_open_risk(tx, risk_id, Some(caller), WhileOpen::ChangeControls).await?;
                control_exists(tx, control_id).await?;
                let pair = (risk_id, control_id.to_string());
                if let Some(existing) = risk_control::Entity::find_by_id(pair).one(tx).await? {
                    return Ok((name.clone(), existing));
                }
                let link = risk_control::Model {
                    risk_id,
                    control_id: control_id.to_string(),
                    linked_by: caller.actor(),
                    create_time: now,
                };
                risk_control::Entity::insert(link.clone().into_active_model().reset_all())
                    .exec_without_returning(tx)
                    .await
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            ApiError::Conflict {
                                resource: name.clone(),
                            }
                        } else {
                            e.into()
                        }
                    })?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), link))
            })
            .await;
        match result {
            Ok(Outcome::Created(link)) => Ok(link),
            // A concurrent link of the same pair won: linking is idempotent.
            Ok(Outcome::Replayed(_)) | Err(ApiError::Conflict { .. }) => {
                self.control_link(risk_id, control_id).await
            }
            Err(e) => Err(e),
        }
    }

    /// One risk ↔ control link.
    pub async fn control_link(
        &self,
        risk_id: Uuid,
        control_id: &str,
    ) -> ApiResult<risk_control::Model> {
        get_by_id::<risk_control::Entity>(
            self.connection(),
            (risk_id, control_id.to_string()),
            &link_name(risk_id, control_id),
        )
        .await
    }

    /// A page of a risk's links.
    pub async fn control_links(
        &self,
        risk_id: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<risk_control::Model>> {
        self.get_risk(risk_id).await?;
        let mut select = risk_control::Entity::find()
            .filter(risk_control::Column::RiskId.eq(risk_id))
            .filter(q.condition.clone());
        let mut columns = Vec::new();
        for (_, direction) in &q.order {
            // `create_time` is the only sort field.
            columns.push(risk_control::Column::CreateTime);
            select = select.order_by(risk_control::Column::CreateTime, direction.order());
        }
        select = select.order_by(risk_control::Column::ControlId, q.tie_break().order());
        if let Some(after) = q.after_condition(&columns, risk_control::Column::ControlId) {
            select = select.filter(after);
        }
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }

    /// Removes a link; NOT_FOUND when the pair is not linked.
    pub async fn unlink_control(
        &self,
        risk_id: Uuid,
        control_id: &str,
        caller: &Caller,
    ) -> ApiResult<risk_control::Model> {
        let name = link_name(risk_id, control_id);
        let tx = db::begin_write(self.connection()).await?;
        lock_open_risk(&tx, risk_id, Some(caller), WhileOpen::ChangeControls).await?;
        let key = (risk_id, control_id.to_string());
        let link = risk_control::Entity::find_by_id(key.clone())
            .one(&tx)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        risk_control::Entity::delete_by_id(key).exec(&tx).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(link)
    }

    /// Deletes a control (etag checked when `expected_version` is given) unless a risk that is
    /// not CLOSED links it: then nothing changes and the answer is those risks' names. Its
    /// requirement rows and its links to CLOSED risks go with it.
    pub async fn delete_control(
        &self,
        id: &str,
        expected_version: Option<i64>,
        caller: &Caller,
    ) -> ApiResult<()> {
        caller.must_be_unscoped("change the controls catalogue")?;
        let name = format!("controls/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let locked = control::Entity::find_by_id(id).lock_exclusive();
        let current = one_or_not_found(locked, &tx, &name).await?;
        check_version(&name, expected_version, current.version)?;
        let linked = Query::select()
            .column(risk_control::Column::RiskId)
            .from(risk_control::Entity)
            .and_where(risk_control::Column::ControlId.eq(id))
            .to_owned();
        let open: Vec<Uuid> = risk::Entity::find()
            .select_only()
            .column(risk::Column::Id)
            .filter(risk::Column::Id.in_subquery(linked))
            .filter(risk::Column::Status.ne(RiskStatus::Closed as i32))
            .order_by_asc(risk::Column::Id)
            .limit(100)
            .into_tuple()
            .all(&tx)
            .await?;
        if !open.is_empty() {
            return Err(ApiError::Referenced {
                resource: name,
                by: open.iter().map(|r| format!("risks/{r}")).collect(),
            });
        }
        risk_control::Entity::delete_many()
            .filter(risk_control::Column::ControlId.eq(id))
            .exec(&tx)
            .await?;
        control_requirement::Entity::delete_many()
            .filter(control_requirement::Column::ControlId.eq(id))
            .exec(&tx)
            .await?;
        control::Entity::delete_by_id(id).exec(&tx).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of the controls linked to a risk, by id.
    pub async fn risk_controls(
        &self,
        risk_id: Uuid,
        list: &ListQuery,
    ) -> ApiResult<Vec<control::Model>> {
        self.get_risk(risk_id).await?;
        let linked = Query::select()
            .column(risk_control::Column::ControlId)
            .from(risk_control::Entity)
            .and_where(risk_control::Column::RiskId.eq(risk_id))
            .to_owned();
        self.controls_where(
            Condition::all().add(control::Column::Id.in_subquery(linked)),
            list,
        )
        .await
    }

    /// The risks linked to a control, by id, after `after`; CLOSED ones only when
    /// `include_closed`.
    pub async fn control_risks(
        &self,
        control_id: &str,
        include_closed: bool,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<risk::Model>> {
        control_exists(self.connection(), control_id).await?;
        let linked = Query::select()
            .column(risk_control::Column::RiskId)
            .from(risk_control::Entity)
            .and_where(risk_control::Column::ControlId.eq(control_id))
            .to_owned();
        let mut q = risk::Entity::find()
            .filter(risk::Column::Id.in_subquery(linked))
            .order_by_asc(risk::Column::Id);
        if !include_closed {
            q = q.filter(risk::Column::Status.ne(RiskStatus::Closed as i32));
        }
        if let Some(after) = after {
            q = q.filter(risk::Column::Id.gt(after));
        }
        Ok(q.limit(limit).all(self.connection()).await?)
    }

    /// The control deficiency (1–5) of a risk derived from its linked controls
    /// ([`derived_deficiency`]).
    pub async fn derived_control_deficiency(&self, risk_id: Uuid) -> ApiResult<u8> {
        let linked = Query::select()
            .column(risk_control::Column::ControlId)
            .from(risk_control::Entity)
            .and_where(risk_control::Column::RiskId.eq(risk_id))
            .to_owned();
        let controls = control::Entity::find()
            .filter(control::Column::Id.in_subquery(linked))
            .all(self.connection())
            .await?;
        Ok(derived_deficiency(controls.iter().map(|c| {
            (c.design_effectiveness, c.operating_effectiveness)
        })))
    }

    /// Upserts a validated catalogue in one transaction, as `caller`: a new id is created, a
    /// changed control is updated (its version bumped), an identical one is left alone. Each
    /// change is audited.
    pub async fn import_controls(
        &self,
        controls: Vec<control::Model>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<ImportSummary> {
        let mut summary = ImportSummary::default();
        let tx = db::begin_write(self.connection()).await?;
        for mut c in controls {
            let name = format!("controls/{}", c.id);
            let current = control::Entity::find_by_id(c.id.clone())
                .lock_exclusive()
                .one(&tx)
                .await?;
            match current {
                None => {
                    (c.version, c.create_time, c.update_time) = (1, now, now);
                    control::Entity::insert(c.clone().into_active_model().reset_all())
                        .exec_without_returning(&tx)
                        .await?;
                    write_requirements(&tx, &c.id, &requirements_of(&c), false).await?;
                    summary.created.push(name.clone());
                }
                Some(current) if same_content(&current, &c) => {
                    summary.unchanged.push(name);
                    continue;
                }
                Some(current) => {
                    c.version = current.version + 1;
                    c.create_time = current.create_time;
                    c.update_time = now;
                    control::Entity::update(c.clone().into_active_model().reset_all())
                        .exec(&tx)
                        .await?;
                    write_requirements(&tx, &c.id, &requirements_of(&c), true).await?;
                    summary.updated.push(name.clone());
                }
            }
            audit::record(&tx, SERVICE, caller, &name, "").await?;
        }
        tx.commit().await?;
        Ok(summary)
    }
}

static EFFECTIVENESS: EnumValues = EnumValues {
    prefix: "CONTROL_EFFECTIVENESS_",
    values: Effectiveness::NAMES,
};

/// The filter fields of `ListControls`.
pub static CONTROL_FILTER: FilterTable<control::Column> = FilterTable(&[
    Field::new("owner", Kind::Text(control::Column::Owner)),
    Field::new(
        "design_effectiveness",
        Kind::Enum {
            column: control::Column::DesignEffectiveness,
            values: &EFFECTIVENESS,
            ordered: false,
        },
    ),
    Field::new(
        "operating_effectiveness",
        Kind::Enum {
            column: control::Column::OperatingEffectiveness,
            values: &EFFECTIVENESS,
            ordered: false,
        },
    ),
    Field::new("framework", Kind::Custom(framework)),
    Field::new("last_test_time", Kind::Time(control::Column::LastTestTime)),
]);

/// `order_by` of `ListControls`: up to two of `title`, `owner`, `create_time`, `update_time`,
/// each optionally `desc`; ascending id (the slug, alphabetical) by default.
pub const CONTROL_SORTING: Sorting = Sorting {
    fields: &[
        ("title", KeyType::Text),
        ("owner", KeyType::Text),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
    ],
    default: &[],
    max_fields: 2,
    id: KeyType::Text,
};

fn control_column(field: &str) -> Option<control::Column> {
    match field {
        "title" => Some(control::Column::Title),
        "owner" => Some(control::Column::Owner),
        "create_time" => Some(control::Column::CreateTime),
        "update_time" => Some(control::Column::UpdateTime),
        _ => None,
    }
}

/// The page-token keys of a control in `q`'s order.
pub fn control_keys(q: &ListQuery, c: &control::Model) -> Vec<Key> {
    keys_of(
        q,
        c,
        |f, c| match f {
            "title" => Key::Text(c.title.clone()),
            "owner" => Key::Text(c.owner.clone()),
            "update_time" => Key::Int(c.update_time),
            _ => Key::Int(c.create_time),
        },
        c.id.clone(),
    )
}

/// `framework = "ISO 27001"`: the control satisfies a requirement of that framework.
fn framework(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let matching = Query::select()
        .column(control_requirement::Column::ControlId)
        .from(control_requirement::Entity)
        .and_where(control_requirement::Column::Framework.eq(value))
        .to_owned();
    let cond = Condition::all().add(control::Column::Id.in_subquery(matching));
    Ok(if op == Op::Eq { cond } else { cond.not() })
}

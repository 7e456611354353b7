//! Preparation listings: response templates, contacts and notification rules, in the order of
//! the preparation file, paged by position.

use super::pb;
use assurance_runtime::{
    ApiResult,
    list::{ListQuery, ListRequest, Sorting},
    page::Key,
    validate::Violations,
};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert};

/// One page of a list held in memory: the items after the previous page's last position, and
/// the next page's token.
fn page_of<T, P>(
    collection: &str,
    items: &[T],
    page_size: i32,
    page_token: &str,
    to_proto: impl Fn(&T) -> P,
) -> ApiResult<(Vec<P>, String)> {
    let mut v = Violations::new();
    let list = ListQuery::parse(
        &mut v,
        &ListRequest::paged(&[collection], page_size, page_token),
        None,
        &Sorting::BY_SEQUENCE,
    );
    v.finish()?;
    let start = list.after_sequence().map_or(0, |last| {
        usize::try_from(last).map_or(usize::MAX, |l| l.saturating_add(1))
    });
    let limit = usize::try_from(list.limit()).unwrap_or(usize::MAX);
    let mut page: Vec<(usize, &T)> = items.iter().enumerate().skip(start).take(limit).collect();
    let next_page_token = list.next_page(&mut page, |(position, _)| {
        vec![Key::Int(i64::try_from(*position).unwrap_or(i64::MAX))]
    });
    Ok((
        page.into_iter().map(|(_, t)| to_proto(t)).collect(),
        next_page_token,
    ))
}

impl IncidentApi {
    pub(super) async fn preparation_templates(
        &self,
        request: Request<pb::ListResponseTemplatesRequest>,
    ) -> Result<Response<pb::ListResponseTemplatesResponse>, Status> {
        let req = request.get_ref();
        let (templates, next_page_token) = page_of(
            "templates",
            &self.preparation.templates,
            req.page_size,
            &req.page_token,
            convert::template,
        )?;
        Ok(Response::new(pb::ListResponseTemplatesResponse {
            templates,
            next_page_token,
        }))
    }

    pub(super) async fn preparation_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let req = request.get_ref();
        let (contacts, next_page_token) = page_of(
            "contacts",
            &self.preparation.contacts,
            req.page_size,
            &req.page_token,
            convert::contact,
        )?;
        Ok(Response::new(pb::ListContactsResponse {
            contacts,
            next_page_token,
        }))
    }

    pub(super) async fn preparation_notification_rules(
        &self,
        request: Request<pb::ListNotificationRulesRequest>,
    ) -> Result<Response<pb::ListNotificationRulesResponse>, Status> {
        let req = request.get_ref();
        let (rules, next_page_token) = page_of(
            "notificationRules",
            &self.preparation.notification_rules,
            req.page_size,
            &req.page_token,
            convert::notification_rule,
        )?;
        Ok(Response::new(pb::ListNotificationRulesResponse {
            rules,
            next_page_token,
        }))
    }
}

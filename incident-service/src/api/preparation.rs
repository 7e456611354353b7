//! Preparation listings: response templates, contacts and notification rules.

use assurance_proto::incident::v1 as pb;
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert};

impl IncidentApi {
    pub(super) async fn preparation_templates(
        &self,
        _request: Request<pb::ListResponseTemplatesRequest>,
    ) -> Result<Response<pb::ListResponseTemplatesResponse>, Status> {
        Ok(Response::new(pb::ListResponseTemplatesResponse {
            templates: self
                .preparation
                .templates
                .iter()
                .map(convert::template)
                .collect(),
        }))
    }

    pub(super) async fn preparation_contacts(
        &self,
        _request: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        Ok(Response::new(pb::ListContactsResponse {
            contacts: self
                .preparation
                .contacts
                .iter()
                .map(convert::contact)
                .collect(),
        }))
    }

    pub(super) async fn preparation_notification_rules(
        &self,
        _request: Request<pb::ListNotificationRulesRequest>,
    ) -> Result<Response<pb::ListNotificationRulesResponse>, Status> {
        Ok(Response::new(pb::ListNotificationRulesResponse {
            rules: self
                .preparation
                .notification_rules
                .iter()
                .map(convert::notification_rule)
                .collect(),
        }))
    }
}

//! Company settings → the company's time zone, a form on the Users page: an admin picks the
//! IANA zone every time is shown in (pages, CSV downloads, emails); others see which it is.
use super::{Errors, Form, Viewer, WebResult, fragments};
use crate::ops::company;
use crate::state::AppState;
use crate::zone::{self, Zone};
use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/company/time_zone", post(save))
}

#[derive(Template)]
#[template(path = "_company_zone.html")]
pub struct ZoneForm {
    /// The company's own setting as typed or stored; empty for the server's zone.
    value: String,
    /// The zone in force, named, and the time now in it.
    current: String,
    now: String,
    server: String,
    can_edit: bool,
    names: &'static [String],
    errors: Errors,
    saved: bool,
}

impl ZoneForm {
    pub async fn new(state: &AppState, v: &Viewer) -> WebResult<ZoneForm> {
        let value = company::time_zone_setting(state, &v.caller.user, v.company())
            .await?
            .unwrap_or_default();
        Ok(ZoneForm::of(v, &v.zone, value, Errors::default(), false))
    }

    fn of(v: &Viewer, zone: &Zone, value: String, errors: Errors, saved: bool) -> ZoneForm {
        let can_edit = v.caller.user.permissions.can_manage_users();
        ZoneForm {
            value,
            current: zone.name(),
            now: zone.show(costbridge_storage::now()),
            server: Zone::server().name(),
            // Only an editor gets the list of choices (some 600 names).
            names: if can_edit { zone::names() } else { &[] },
            can_edit,
            errors,
            saved,
        }
    }
}

#[derive(Deserialize)]
struct ZoneFields {
    #[serde(default)]
    time_zone: String,
}

#[tracing::instrument(skip_all)]
async fn save(v: Viewer, Form(f): Form<ZoneFields>) -> WebResult<Response> {
    match company::set_time_zone(v.state(), &v.caller.user, v.company(), Some(&f.time_zone)).await {
        Ok(zone) => {
            let value = company::time_zone_setting(v.state(), &v.caller.user, v.company())
                .await?
                .unwrap_or_default();
            let form = ZoneForm::of(&v, &zone, value, Errors::default(), true);
            fragments(StatusCode::OK, vec![form.render()])
        }
        Err(e) => {
            let errors = Errors::from_op(e)?;
            let form = ZoneForm::of(&v, &v.zone, f.time_zone, errors, false);
            fragments(StatusCode::UNPROCESSABLE_ENTITY, vec![form.render()])
        }
    }
}

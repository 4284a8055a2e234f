//! The grants the Xero connector draws access tokens from: the stored token while it is
//! good, else a refresh under the grant's row lock whose rotated pair is stored before use.
use super::sealed;
use crate::secrets::Cipher;
use costbridge_domain::xero::GrantStatus;
use costbridge_erp::xero::oauth::{self, OAuthError};
use costbridge_erp::xero::{Access, Grants, XeroConfig};
use costbridge_erp::{ConnectorError, Outbound, Secret};
use costbridge_storage::xero::{Refreshed, XeroGrant};
use costbridge_storage::{Db, StoreError, now};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use time::Duration;

/// A token this close to its expiry is refreshed before use.
const EXPIRY_MARGIN: Duration = Duration::seconds(60);

pub(super) struct StoredGrants {
    pub(super) db: Db,
    pub(super) cipher: Arc<Cipher>,
    pub(super) config: Arc<XeroConfig>,
    pub(super) outbound: Outbound,
}

/// What the company must do when Xero gave the grant up.
fn reconnect(problem: Option<&str>) -> ConnectorError {
    ConnectorError::Unavailable(format!(
        "Xero no longer accepts this connection ({}): the Xero connection needs reconnecting; \
         an admin clicks Connect to Xero on Company settings → ERP connection",
        problem.unwrap_or("the grant is gone")
    ))
}

impl StoredGrants {
    /// The stored token when it is still good and not the one Xero just refused.
    fn usable(
        &self, g: &XeroGrant, refused: Option<&Secret>,
    ) -> Result<Option<Access>, ConnectorError> {
        if g.status == GrantStatus::NeedsReconnect {
            return Err(reconnect(g.problem.as_deref()));
        }
        let Some(tenant_id) = g.tenant_id.clone() else {
            return Err(ConnectorError::NotSupported(
                "Costbridge: pick the Xero organisation on Company settings → ERP connection first"
                    .into(),
            ));
        };
        let token = self.cipher.open(&g.access_token).map_err(unreadable)?;
        let fresh = g.access_expires_at > now() + EXPIRY_MARGIN
            && refused.is_none_or(|r| r.expose() != token);
        Ok(fresh.then(|| Access {
            token: token.into(),
            tenant_id,
        }))
    }
}

fn unreadable(e: String) -> ConnectorError {
    ConnectorError::Unavailable(format!(
        "Costbridge cannot read the stored Xero tokens: {e}"
    ))
}

fn no_grant() -> ConnectorError {
    ConnectorError::NotSupported(
        "Costbridge: the company is not connected to Xero; an admin clicks Connect to Xero on \
         Company settings → ERP connection"
            .into(),
    )
}

impl Grants for StoredGrants {
    fn access<'a>(
        &'a self, company: i64, refused: Option<&'a Secret>,
    ) -> Pin<Box<dyn Future<Output = Result<Access, ConnectorError>> + Send + 'a>> {
        Box::pin(async move {
            let store =
                |e: StoreError| ConnectorError::Unavailable(format!("storage failure: {e}"));
            // Most calls find a good token and need no lock.
            let grant = self.db.xero_grant(company).await.map_err(store)?;
            if let Some(access) = grant
                .as_ref()
                .map(|g| self.usable(g, refused))
                .transpose()?
                .flatten()
            {
                return Ok(access);
            }
            let decided = self
                .db
                .refresh_xero_grant(company, |g| async move {
                    // Another worker may have refreshed while this one waited for the lock.
                    match self.usable(&g, refused) {
                        Ok(Some(access)) => return Ok(Refreshed::Kept(Ok(access))),
                        Err(e) => return Ok(Refreshed::Kept(Err(e))),
                        Ok(None) => {}
                    }
                    let refresh_token = match self.cipher.open(&g.refresh_token) {
                        Ok(t) => Secret::from(t),
                        Err(e) => return Ok(Refreshed::Kept(Err(unreadable(e)))),
                    };
                    let tenant_id = g.tenant_id.clone().unwrap_or_default();
                    Ok::<_, StoreError>(
                        match oauth::refresh(&self.config, &self.outbound, &refresh_token).await {
                            Ok(t) => Refreshed::Rotated(
                                sealed(&self.cipher, &t),
                                Ok(Access {
                                    token: t.access_token,
                                    tenant_id,
                                }),
                            ),
                            Err(OAuthError::Gone(why)) => {
                                let problem = format!("Xero answered {why} to a token refresh");
                                let e = reconnect(Some(&problem));
                                Refreshed::Gone(problem, Err(e))
                            }
                            Err(e) => Refreshed::Kept(Err(ConnectorError::Unavailable(format!(
                                "Xero's token refresh failed: {e}; Costbridge tries again later"
                            )))),
                        },
                    )
                })
                .await
                .map_err(store)?;
            decided.ok_or_else(no_grant)?
        })
    }
}

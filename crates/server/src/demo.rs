//! `serve --demo`: on an empty database, a demo company a newcomer can click through at once.
use crate::ops::imports;
use crate::password;
use crate::state::AppState;
use costbridge_domain::{Level, Permissions};
use costbridge_storage::users::NewUser;
use serde_json::json;

const DIVISIONS: &str = include_str!("../demo/masterformat-divisions.csv");

/// Tier-2 codes under a few divisions, so the tree has depth.
const TIER2: &str = "01-100,Project Management and Coordination,true
01-500,Temporary Facilities and Controls,true
01-700,Execution and Closeout Requirements,true
03-100,Concrete Forming and Accessories,true
03-200,Concrete Reinforcing,true
03-300,Cast-in-Place Concrete,true
05-100,Structural Metal Framing,true
09-200,Plaster and Gypsum Board,true
09-900,Painting and Coating,true
";

pub struct DemoLogin {
    pub email: &'static str,
    pub password: String,
    pub token: String,
}

/// Seeds the demo company when the database has none; returns the logins to print.
pub async fn seed(state: &AppState) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if state.db.companies_count().await? > 0 {
        return Ok(None);
    }
    let admin_pw = password::new_token()[3..19].to_owned();
    let approver_pw = password::new_token()[3..19].to_owned();
    let admin_hash = password::hash(admin_pw.clone()).await?;
    let approver_hash = password::hash(approver_pw.clone()).await?;
    let admin = NewUser {
        email: "admin@demo.example",
        name: "Avery Admin",
        password_hash: &admin_hash,
        permissions: Permissions {
            admin_tool: Level::Admin,
            erp_integrations: Level::ReadOnly,
            can_push_to_accounting: false,
        },
    };
    let (company, admin_id) = state
        .db
        .create_company("Demo Construction Co.", &admin)
        .await?;
    let approver = NewUser {
        email: "approver@demo.example",
        name: "Parker Approver",
        password_hash: &approver_hash,
        permissions: Permissions {
            admin_tool: Level::ReadOnly,
            erp_integrations: Level::Standard,
            can_push_to_accounting: true,
        },
    };
    let approver_id = state.db.create_user(company, admin_id, &approver).await?.id;
    let connector = json!({
        "kind": "file", "directory": ".", "format": "iif",
        "gl_accounts": [
            {"code": "4000", "name": "Construction Income", "kind": "income"},
            {"code": "4100", "name": "Service Income", "kind": "income"},
            {"code": "5000", "name": "Job Materials", "kind": "expense"},
            {"code": "5100", "name": "Subcontractors", "kind": "expense"},
        ],
    });
    let conn = state
        .db
        .put_erp_connection(
            company,
            admin_id,
            "quickbooks_desktop",
            &connector,
            &connector,
        )
        .await?;
    let csv = format!("{}\n{TIER2}", DIVISIONS.trim_end());
    let admin_user = state.db.user(company, admin_id).await?;
    imports::import(
        state,
        &admin_user,
        company,
        conn.erp_list_id,
        csv.as_bytes(),
        |_| {},
    )
    .await?;
    let mut logins = Vec::new();
    for (email, pw, id) in [
        ("admin@demo.example", admin_pw, admin_id),
        ("approver@demo.example", approver_pw, approver_id),
    ] {
        let token = password::new_token();
        state
            .db
            .insert_token(id, &password::hash_token(&token), None)
            .await?;
        logins.push(DemoLogin {
            email,
            password: pw,
            token,
        });
    }
    Ok(Some(logins))
}

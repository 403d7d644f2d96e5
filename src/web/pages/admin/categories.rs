//! Categories: the tree and the create form, one category's settings and who can see it, and
//! deletion. Granting access lives on the category's own access page (`/categories/{id}/access`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use reelbox_templates::admin::ReasonRow;
use reelbox_templates::admin::categories::{
    CategoriesView, CategoryAdminView, CategoryDraft, ParentOption, TreeRow, categories_page,
    category_admin_page,
};
use serde::Deserialize;

use super::{Ask, confirm, mistake, ticked};
use crate::App;
use crate::accounts::AccountsError;
use crate::accounts::grants::{self};
use crate::db::ids::CategoryId;
use crate::library::categories::{self, Category};
use crate::web::api::categories::{create_category, delete_category, update_category};
use crate::web::auth::{AdminUser, Confirm, CsrfForm, HasCsrf};
use crate::web::error::WebError;
use crate::web::pages::{html_status, see_other};
use crate::web::{Access, Endpoint, chrome, get, post};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get("/admin/categories", Access::Admin, "The category tree and the create-category form", list),
        post("/admin/categories", Access::Admin, "Create a category", create),
        get("/admin/categories/{id}", Access::Admin, "One category: settings and who can see it", detail),
        post(
            "/admin/categories/{id}",
            Access::Admin,
            "Change a category's name, description, parent or public flag",
            update,
        ),
        get("/admin/categories/{id}/delete", Access::Admin, "Confirm deleting a category", delete_confirm),
        post(
            "/admin/categories/{id}/delete",
            Access::Admin,
            "Delete an empty category (its grants go with it)",
            delete,
        ),
    ]
}

#[derive(Deserialize)]
pub struct CategoryForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Empty for the top level.
    #[serde(default)]
    parent_id: String,
    public: Option<String>,
}

impl HasCsrf for CategoryForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl CategoryForm {
    fn parent(&self) -> Result<Option<CategoryId>, String> {
        match self.parent_id.trim() {
            "" => Ok(None),
            s => s
                .parse::<i64>()
                .map(|p| Some(CategoryId(p)))
                .map_err(|_| "Choose where the category goes from the list.".to_string()),
        }
    }
    fn draft(&self) -> CategoryDraft<'_> {
        CategoryDraft {
            name: &self.name,
            description: &self.description,
            parent_id: self.parent().ok().flatten().map(|p| p.0),
            public: ticked(&self.public),
        }
    }
}

/// The choices for "inside", leaving out `exclude` and everything below it (a category cannot
/// move inside itself).
fn parent_options(all: &[Category], exclude: Option<CategoryId>) -> Vec<ParentOption> {
    let depths = categories::depths(all);
    let mut skip_below: Option<usize> = None;
    let mut out = Vec::with_capacity(all.len());
    for (c, depth) in all.iter().zip(depths) {
        if let Some(d) = skip_below {
            if depth > d {
                continue;
            }
            skip_below = None;
        }
        if Some(c.id) == exclude {
            skip_below = Some(depth);
            continue;
        }
        out.push((c.id.0, c.name.clone(), depth));
    }
    out
}

async fn render_list(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    draft: CategoryDraft<'_>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let all = app.db.read(categories::list).await?;
    let depths = categories::depths(&all);
    let tree: Vec<TreeRow> = all
        .iter()
        .zip(depths)
        .map(|(c, depth)| TreeRow {
            id: c.id.0,
            name: c.name.clone(),
            description: c.description.clone(),
            depth,
            public: c.public,
        })
        .collect();
    let parents = parent_options(&all, None);
    let view = CategoriesView {
        csrf: admin.0.csrf().unwrap_or_default(),
        tree: &tree,
        parents: &parents,
        draft,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, categories_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn list(req: HttpRequest, app: web::Data<App>, admin: AdminUser) -> Result<HttpResponse, WebError> {
    render_list(&req, &app, &admin, CategoryDraft::default(), None).await
}

async fn create(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    form: CsrfForm<CategoryForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.0;
    let result = match f.parent() {
        Ok(parent) => create_category(&app, &admin.0, &f.name, parent, &f.description, ticked(&f.public))
            .await
            .map(|c| c.id)
            .map_err(mistake),
        Err(message) => Err(Ok(message)),
    };
    match result {
        Ok(id) => Ok(see_other(&format!("/admin/categories/{id}?notice=created"))),
        Err(message) => render_list(&req, &app, &admin, f.draft(), Some(&message?)).await,
    }
}

async fn render_category(
    req: &HttpRequest,
    app: &App,
    admin: &AdminUser,
    id: CategoryId,
    draft: Option<&CategoryForm>,
    error: Option<&str>,
) -> Result<HttpResponse, WebError> {
    let (trail, all, reasons, children) = app
        .db
        .read(move |c| {
            Ok::<_, AccountsError>((
                categories::ancestry(c, id)?,
                categories::list(c)?,
                grants::explain(c, id)?,
                categories::children(c, id)?,
            ))
        })
        .await?;
    let Some(this) = trail.last() else { return Err(WebError::not_found()) };
    // Public is inherited: a public parent makes this one visible to everyone too.
    let public = trail.iter().any(|c| c.public);
    let reasons: Vec<ReasonRow> = crate::web::pages::library::reason_rows(&reasons, id);
    let parents = parent_options(&all, Some(id));
    let draft = match draft {
        Some(f) => f.draft(),
        None => CategoryDraft {
            name: &this.name,
            description: &this.description,
            parent_id: this.parent_id.map(|p| p.0),
            public: this.public,
        },
    };
    let view = CategoryAdminView {
        csrf: admin.0.csrf().unwrap_or_default(),
        id: id.0,
        name: &this.name,
        path: trail[..trail.len() - 1].iter().map(|c| c.name.clone()).collect(),
        public,
        children: children.into_iter().map(|c| (c.id.0, c.name)).collect(),
        parents: &parents,
        draft,
        reasons: &reasons,
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok(html_status(status, category_admin_page(&chrome(req, Some(&admin.0)), &view)))
}

async fn detail(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    render_category(&req, &app, &admin, path.into_inner(), None, None).await
}

async fn update(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<CategoryId>,
    form: CsrfForm<CategoryForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let f = form.0;
    let result = match f.parent() {
        Ok(parent) => update_category(
            &app,
            &admin.0,
            id,
            Some(f.name.clone()),
            Some(f.description.clone()),
            Some(ticked(&f.public)),
            Some(parent),
        )
        .await
        .map_err(mistake),
        Err(message) => Err(Ok(message)),
    };
    match result {
        Ok(_) => Ok(see_other(&format!("/admin/categories/{id}?notice=saved"))),
        Err(message) => render_category(&req, &app, &admin, id, Some(&f), Some(&message?)).await,
    }
}

async fn delete_confirm(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<CategoryId>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let (c, children) = app
        .db
        .read(move |conn| {
            Ok::<_, AccountsError>((categories::require(conn, id)?, categories::children(conn, id)?.len()))
        })
        .await?;
    let question = format!("Delete the category “{}”?", c.name);
    let consequence = if children > 0 {
        format!(
            "It has {children} subcategor{} — it cannot be deleted until they are moved elsewhere or deleted first.",
            if children == 1 { "y" } else { "ies" }
        )
    } else {
        "Its grants go with it: nobody will see it any more. This cannot be undone.".to_string()
    };
    let (action, cancel) = (format!("/admin/categories/{id}/delete"), format!("/admin/categories/{id}"));
    Ok(confirm(
        &req,
        &admin,
        &Ask {
            title: "Delete category",
            question: &question,
            consequence: &consequence,
            action: &action,
            button: "Delete category",
            cancel: &cancel,
        },
    ))
}

async fn delete(
    req: HttpRequest,
    app: web::Data<App>,
    admin: AdminUser,
    path: web::Path<CategoryId>,
    _form: CsrfForm<Confirm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    match delete_category(&app, &admin.0, id).await {
        Ok(()) => Ok(see_other("/admin/categories?notice=removed")),
        Err(e) => render_category(&req, &app, &admin, id, None, Some(&mistake(e)?)).await,
    }
}

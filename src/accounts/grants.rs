//! Grants of a role on a category to a group or a person, inherited down the category tree,
//! and the resulting access of one person. Privacy by default: no grant, no access.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::AccountsError;
use crate::clock::Timestamp;
use crate::db::ids::{CategoryId, GrantId, GroupId, UserId};
use crate::library::categories::{self, Category};

/// Roles in increasing order of power; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// See the category and watch its media.
    View,
    /// Upload into the category.
    Contribute,
    /// Change the metadata of other people's items.
    Edit,
    /// Recycle and restore items, and grant access to this category and those below it.
    Manage,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::View, Role::Contribute, Role::Edit, Role::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::View => "view",
            Role::Contribute => "contribute",
            Role::Edit => "edit",
            Role::Manage => "manage",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Role::parse(s)
            .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown role {s:?}").into()))
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    Group(GroupId),
    User(UserId),
}

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub id: GrantId,
    pub category_id: CategoryId,
    pub grantee: Grantee,
    /// Group name or username.
    pub grantee_name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

const SELECT: &str = "SELECT gr.id, gr.category_id, gr.group_id, gr.user_id, coalesce(g.name, u.username, ''), gr.role, gr.created_at
                      FROM grants gr LEFT JOIN groups g ON g.id = gr.group_id LEFT JOIN users u ON u.id = gr.user_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    let group: Option<GroupId> = r.get(2)?;
    let user: Option<UserId> = r.get(3)?;
    let grantee = match (group, user) {
        (Some(g), _) => Grantee::Group(g),
        (None, Some(u)) => Grantee::User(u),
        (None, None) => {
            return Err(rusqlite::Error::InvalidColumnType(2, "grantee".into(), rusqlite::types::Type::Null));
        }
    };
    Ok(Grant {
        id: r.get(0)?,
        category_id: r.get(1)?,
        grantee,
        grantee_name: r.get(4)?,
        role: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn for_category(conn: &Connection, category: CategoryId) -> Result<Vec<Grant>, AccountsError> {
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} WHERE gr.category_id = ?1 ORDER BY gr.role DESC, 5"))?;
    let rows = stmt.query_map([category], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every grant (`reelbox compare`).
pub fn all(conn: &Connection) -> Result<Vec<Grant>, AccountsError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY gr.category_id, 5"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn split(grantee: Grantee) -> (Option<GroupId>, Option<UserId>) {
    match grantee {
        Grantee::Group(g) => (Some(g), None),
        Grantee::User(u) => (None, Some(u)),
    }
}

/// Give `grantee` `role` on `category`, replacing the role it had there.
pub fn set(
    conn: &Connection,
    category: CategoryId,
    grantee: Grantee,
    role: Role,
    now: Timestamp,
) -> Result<(), AccountsError> {
    let (group, user) = split(grantee);
    conn.execute(
        "INSERT INTO grants (category_id, group_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (category_id, ifnull(group_id, 0), ifnull(user_id, 0)) DO UPDATE SET role = excluded.role",
        params![category, group, user, role.as_str(), now],
    )?;
    Ok(())
}

/// Replace every grant on `category` with `grants`, in one transaction.
pub fn replace(
    conn: &mut Connection,
    category: CategoryId,
    grants: &[(Grantee, Role)],
    now: Timestamp,
) -> Result<(), AccountsError> {
    let tx = conn.transaction()?;
    categories::require(&tx, category)?;
    tx.execute("DELETE FROM grants WHERE category_id = ?1", [category])?;
    for (grantee, role) in grants {
        match grantee {
            Grantee::Group(g) => drop(super::groups::require(&tx, *g)?),
            Grantee::User(u) => drop(super::users::require(&tx, *u)?),
        }
        set(&tx, category, *grantee, *role, now)?;
    }
    tx.commit()?;
    Ok(())
}

pub fn remove(conn: &Connection, id: GrantId) -> Result<Grant, AccountsError> {
    let grant =
        conn.query_row(&format!("{SELECT} WHERE gr.id = ?1"), [id], from_row).map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => AccountsError::NotFound("grant"),
            other => other.into(),
        })?;
    conn.execute("DELETE FROM grants WHERE id = ?1", [id])?;
    Ok(grant)
}

/// Grants that apply to a person directly or through their groups (on any category).
pub fn for_person(conn: &Connection, user: UserId) -> Result<Vec<Grant>, AccountsError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE gr.user_id = ?1 OR gr.group_id IN (SELECT group_id FROM group_members WHERE user_id = ?1)
         ORDER BY gr.category_id"
    ))?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one person (or an anonymous visitor) may do, category by category.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub is_admin: bool,
    /// The effective role on each category where there is one (inherited roles included).
    roles: HashMap<CategoryId, Role>,
    /// Categories visible because they, or a parent, are public.
    public: Vec<CategoryId>,
}

impl Access {
    /// Effective role on `category`; administrators manage everything.
    pub fn role(&self, category: CategoryId) -> Option<Role> {
        if self.is_admin {
            return Some(Role::Manage);
        }
        let granted = self.roles.get(&category).copied();
        if granted.is_none() && self.public.contains(&category) { Some(Role::View) } else { granted }
    }

    pub fn can(&self, category: CategoryId, role: Role) -> bool {
        self.role(category).is_some_and(|r| r >= role)
    }

    /// True when the person has been granted anything at all (public categories aside).
    pub fn has_any_grant(&self) -> bool {
        self.is_admin || !self.roles.is_empty()
    }

    /// Administrators, and people with `manage` on some category: those who have a recycle bin.
    pub fn manages_any(&self) -> bool {
        self.is_admin || self.roles.values().any(|r| *r >= Role::Manage)
    }

    pub fn visible<'a>(&self, all: &'a [Category]) -> Vec<&'a Category> {
        all.iter().filter(|c| self.can(c.id, Role::View)).collect()
    }
}

/// Compute access for `user` (`None`: anonymous) from the category tree and the grants.
pub fn access(conn: &Connection, user: Option<(UserId, bool)>) -> Result<Access, AccountsError> {
    let all = categories::list(conn)?;
    let direct: Vec<Grant> = match user {
        Some((id, _)) => for_person(conn, id)?,
        None => Vec::new(),
    };
    let mut own: HashMap<CategoryId, Role> = HashMap::new();
    for g in &direct {
        let e = own.entry(g.category_id).or_insert(g.role);
        *e = (*e).max(g.role);
    }
    let parents: HashMap<CategoryId, Option<CategoryId>> = all.iter().map(|c| (c.id, c.parent_id)).collect();
    let public_flags: HashMap<CategoryId, bool> = all.iter().map(|c| (c.id, c.public)).collect();
    let mut roles = HashMap::new();
    let mut public = Vec::new();
    for c in &all {
        let mut best: Option<Role> = None;
        let mut is_public = false;
        let mut cursor = Some(c.id);
        let mut steps = 0;
        while let Some(id) = cursor {
            if let Some(r) = own.get(&id) {
                best = Some(best.map_or(*r, |b| b.max(*r)));
            }
            is_public |= public_flags.get(&id).copied().unwrap_or(false);
            cursor = parents.get(&id).copied().flatten();
            steps += 1;
            if steps > 64 {
                break; // a cycle cannot be created through the product; stop rather than spin
            }
        }
        if let Some(r) = best {
            roles.insert(c.id, r);
        }
        if is_public {
            public.push(c.id);
        }
    }
    Ok(Access { is_admin: user.is_some_and(|(_, admin)| admin), roles, public })
}

/// One line of "who can see this category and why".
#[derive(Debug, Clone, Serialize)]
pub struct AccessReason {
    pub grantee: Grantee,
    pub grantee_name: String,
    pub role: Role,
    /// The category the grant is on: this one or an ancestor.
    pub via_category_id: CategoryId,
    pub via_category_name: String,
    /// For groups: how many members the grant reaches.
    pub members: Option<i64>,
}

/// Every grant that reaches `category`, its own and inherited ones, nearest first.
pub fn explain(conn: &Connection, category: CategoryId) -> Result<Vec<AccessReason>, AccountsError> {
    let chain = categories::ancestry(conn, category)?;
    let mut out = Vec::new();
    for cat in chain.iter().rev() {
        for g in for_category(conn, cat.id)? {
            let members = match g.grantee {
                Grantee::Group(id) => Some(super::groups::require(conn, id)?.members),
                Grantee::User(_) => None,
            };
            out.push(AccessReason {
                grantee: g.grantee,
                grantee_name: g.grantee_name,
                role: g.role,
                via_category_id: cat.id,
                via_category_name: cat.name.clone(),
                members,
            });
        }
    }
    Ok(out)
}

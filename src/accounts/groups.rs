//! Groups of people; grants usually go to groups, not to individuals.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::AccountsError;
use super::users::is_unique_violation;
use crate::clock::Timestamp;
use crate::db::ids::{GroupId, UserId};

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub description: String,
    pub members: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    pub disabled: bool,
    pub added_at: Timestamp,
}

const SELECT: &str = "SELECT g.id, g.name, g.description, g.created_at,
                             (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
                      FROM groups g";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        created_at: r.get(3)?,
        members: r.get(4)?,
    })
}

pub fn create(
    conn: &Connection,
    name: &str,
    description: &str,
    now: Timestamp,
) -> Result<Group, AccountsError> {
    super::check_name(name, 100).map_err(AccountsError::InvalidName)?;
    match conn.execute(
        "INSERT INTO groups (name, description, created_at) VALUES (?1, ?2, ?3)",
        params![name, description, now],
    ) {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(AccountsError::GroupNameTaken(name.into())),
        Err(e) => return Err(e.into()),
    }
    require(conn, GroupId(conn.last_insert_rowid()))
}

pub fn get(conn: &Connection, id: GroupId) -> Result<Option<Group>, AccountsError> {
    Ok(conn.query_row(&format!("{SELECT} WHERE g.id = ?1"), [id], from_row).optional()?)
}

pub fn require(conn: &Connection, id: GroupId) -> Result<Group, AccountsError> {
    get(conn, id)?.ok_or(AccountsError::NotFound("group"))
}

pub fn list(conn: &Connection) -> Result<Vec<Group>, AccountsError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY g.name"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn rename(conn: &Connection, id: GroupId, name: &str, description: &str) -> Result<Group, AccountsError> {
    super::check_name(name, 100).map_err(AccountsError::InvalidName)?;
    match conn.execute(
        "UPDATE groups SET name = ?2, description = ?3 WHERE id = ?1",
        params![id, name, description],
    ) {
        Ok(0) => Err(AccountsError::NotFound("group")),
        Ok(_) => require(conn, id),
        Err(e) if is_unique_violation(&e) => Err(AccountsError::GroupNameTaken(name.into())),
        Err(e) => Err(e.into()),
    }
}

/// Delete a group; its memberships and grants go with it.
pub fn delete(conn: &Connection, id: GroupId) -> Result<Group, AccountsError> {
    let group = require(conn, id)?;
    conn.execute("DELETE FROM groups WHERE id = ?1", [id])?;
    Ok(group)
}

/// Add a member; adding someone already in the group changes nothing. Returns true when added.
pub fn add_member(
    conn: &Connection,
    group: GroupId,
    user: UserId,
    now: Timestamp,
) -> Result<bool, AccountsError> {
    require(conn, group)?;
    super::users::require(conn, user)?;
    let n = conn.execute(
        "INSERT OR IGNORE INTO group_members (group_id, user_id, added_at) VALUES (?1, ?2, ?3)",
        params![group, user, now],
    )?;
    Ok(n == 1)
}

pub fn remove_member(conn: &Connection, group: GroupId, user: UserId) -> Result<bool, AccountsError> {
    require(conn, group)?;
    Ok(conn
        .execute("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2", params![group, user])?
        == 1)
}

pub fn members(conn: &Connection, group: GroupId) -> Result<Vec<Member>, AccountsError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.disabled_at IS NOT NULL, m.added_at
         FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.username",
    )?;
    let rows = stmt.query_map([group], |r| {
        Ok(Member {
            user_id: r.get(0)?,
            username: r.get(1)?,
            display_name: r.get(2)?,
            disabled: r.get(3)?,
            added_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The groups a person belongs to, by name.
pub fn of_user(conn: &Connection, user: UserId) -> Result<Vec<Group>, AccountsError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE g.id IN (SELECT group_id FROM group_members WHERE user_id = ?1) ORDER BY g.name"
    ))?;
    let rows = stmt.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

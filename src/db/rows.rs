//! Whole rows moved between two databases of the same schema (partial restores: `reelbox
//! recover`). The domain module that owns a table names it and the rows to take; this only
//! carries the values, column by column, so a column added by a later migration comes along.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

/// Rows of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub table: &'static str,
    pub columns: Vec<String>,
    pub values: Vec<Vec<Value>>,
}

impl Rows {
    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The values of `column`, one per row (empty when there is no such column).
    pub fn column(&self, column: &str) -> Vec<Value> {
        match self.index(column) {
            Some(i) => self.values.iter().map(|r| r[i].clone()).collect(),
            None => Vec::new(),
        }
    }

    /// Replace each value of `column` with `f(value)`.
    pub fn map_column(&mut self, column: &str, mut f: impl FnMut(&Value) -> Value) {
        if let Some(i) = self.index(column) {
            for row in &mut self.values {
                row[i] = f(&row[i]);
            }
        }
    }

    /// Keep the rows whose `column` passes `keep`.
    pub fn retain(&mut self, column: &str, mut keep: impl FnMut(&Value) -> bool) {
        if let Some(i) = self.index(column) {
            self.values.retain(|r| keep(&r[i]));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// `SELECT * FROM table WHERE column = key`. `table` and `column` are the caller's constants.
pub fn select(conn: &Connection, table: &'static str, column: &str, key: i64) -> rusqlite::Result<Rows> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" WHERE \"{column}\" = ?1"))?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let n = columns.len();
    let values = stmt
        .query_map([key], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<Vec<_>>>())?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Rows { table, columns, values })
}

/// Insert `rows` as they are (same ids). Fails on a conflict with an existing row.
pub fn insert(conn: &Connection, rows: &Rows) -> rusqlite::Result<usize> {
    if rows.values.is_empty() {
        return Ok(0);
    }
    let cols: Vec<String> = rows.columns.iter().map(|c| format!("\"{c}\"")).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        rows.table,
        cols.join(", "),
        marks.join(", ")
    ))?;
    let mut n = 0;
    for row in &rows.values {
        n += stmt.execute(params_from_iter(row.iter()))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_between_databases_and_can_be_adjusted() {
        let a = Connection::open_in_memory().expect("a");
        let b = Connection::open_in_memory().expect("b");
        for c in [&a, &b] {
            c.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, name TEXT, who INTEGER, x BLOB)",
            )
            .expect("schema");
        }
        a.execute_batch("INSERT INTO t VALUES (7, 1, 'seven', 3, x'00ff'), (8, 1, 'eight', 4, NULL), (9, 2, 'nine', 5, NULL)")
            .expect("rows");
        let mut rows = select(&a, "t", "k", 1).expect("select");
        assert_eq!(rows.values.len(), 2);
        rows.map_column("who", |v| if *v == Value::Integer(4) { Value::Null } else { v.clone() });
        rows.retain("name", |v| *v != Value::Text("nope".into()));
        assert_eq!(insert(&b, &rows).expect("insert"), 2);
        type Row = (i64, String, Option<i64>, Option<Vec<u8>>);
        let got: Vec<Row> = b
            .prepare("SELECT id, name, who, x FROM t ORDER BY id")
            .expect("prep")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(got[0], (7, "seven".into(), Some(3), Some(vec![0, 255])));
        assert_eq!(got[1], (8, "eight".into(), None, None));
        assert!(insert(&b, &rows).is_err(), "same ids again is a conflict");
    }
}

//! One query API over both backends. A query is written once, as SQL text with `$n`
//! placeholders (which sqlx-sqlite accepts too) and a list of [`Arg`]s; the values are bound per
//! backend in [`arguments`] and the statement runs in [`Link`], the only places that know there
//! are two. [`Tx`] is a write transaction (opened by [`Db::write`](crate::Db::write)); the same
//! read methods on [`Db`] run on the pool.
use crate::held::Held;
use crate::{Db, StoreError};
use sqlx::postgres::PgRow;
use sqlx::query::QueryAs;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};
use sqlx::{Database, Encode, FromRow, IntoArguments, PgConnection, Postgres, Sqlite};
use sqlx::{SqliteConnection, Type};
use time::OffsetDateTime;

/// A value bound to a placeholder. Each kind carries its own NULL, so PostgreSQL learns the
/// parameter's type even when the value is missing (`$2 IS NULL OR col = $2`).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Time(Option<OffsetDateTime>),
    /// A PostgreSQL array, for a bulk statement's `UNNEST`: the statements that bind one run
    /// on PostgreSQL only ([`Queries::postgres`]); SQLite refuses it.
    Array(Array),
}

#[derive(Debug, Clone)]
pub(crate) enum Array {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
}

impl Array {
    fn len(&self) -> usize {
        match self {
            Array::Int(v) => v.len(),
            Array::Text(v) => v.len(),
            Array::Bool(v) => v.len(),
        }
    }

    /// The element type PostgreSQL casts the array to.
    fn element(&self) -> &'static str {
        match self {
            Array::Int(_) => "bigint",
            Array::Text(_) => "text",
            Array::Bool(_) => "boolean",
        }
    }

    /// The value at `row`, to bind on its own.
    fn at(&self, row: usize) -> Arg {
        match self {
            Array::Int(v) => v[row].into(),
            Array::Text(v) => v[row].clone().into(),
            Array::Bool(v) => v[row].into(),
        }
    }
}

/// The most values SQLite binds in one statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const SQLITE_VALUES: usize = 32_766;

/// How many rows of `columns` values a statement with `own` placeholders of its own reads
/// through [`rows_table`] at most: on SQLite as many as its bound values allow (a larger
/// statement fails to prepare); on PostgreSQL any number, each column being one array.
pub(crate) fn rows_per_statement(postgres: bool, own: usize, columns: usize) -> usize {
    if postgres {
        usize::MAX
    } else {
        (SQLITE_VALUES - own) / columns
    }
}

/// The rows a bulk statement reads, given column by column, as a table `v(column1, …)` for its
/// `FROM`, and the values to bind after the statement's own `skip`. PostgreSQL gets one array
/// a column through `UNNEST`: any number of rows is one statement of as many parameters as
/// columns, and its planner joins them in one pass (a 100,000-code export's outcomes in
/// statements of 8,000 `VALUES` rows scanned the codes once a statement, EXPLAIN ANALYZE: 54 of
/// each 290 ms). SQLite, which has no arrays, gets a multi-row `VALUES`, whose columns it names
/// the same way; its caller keeps to [`rows_per_statement`].
pub(crate) fn rows_table(postgres: bool, skip: usize, columns: Vec<Array>) -> (String, Vec<Arg>) {
    let names: Vec<String> = (1..=columns.len()).map(|i| format!("column{i}")).collect();
    if postgres {
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}[]", skip + i + 1, c.element()))
            .collect();
        let sql = format!("UNNEST({}) AS v({})", arrays.join(", "), names.join(", "));
        (sql, columns.into_iter().map(Arg::from).collect())
    } else {
        let rows = columns.first().map_or(0, Array::len);
        let args = (0..rows)
            .flat_map(|r| columns.iter().map(move |c| c.at(r)))
            .collect();
        let sql = format!("(VALUES {}) AS v", values_after(skip, rows, columns.len()));
        (sql, args)
    }
}

impl From<Array> for Arg {
    fn from(v: Array) -> Self {
        Arg::Array(v)
    }
}

/// How a backend binds the values it stores its own way: arrays and times.
trait Backend: Database {
    fn add_array(out: &mut Self::Arguments, a: Array) -> Result<(), sqlx::error::BoxDynError>;
    fn add_time(
        out: &mut Self::Arguments, t: Option<OffsetDateTime>,
    ) -> Result<(), sqlx::error::BoxDynError>;
}

impl Backend for Postgres {
    fn add_array(out: &mut Self::Arguments, a: Array) -> Result<(), sqlx::error::BoxDynError> {
        use sqlx::Arguments;
        match a {
            Array::Int(v) => out.add(v),
            Array::Text(v) => out.add(v),
            Array::Bool(v) => out.add(v),
        }
    }
    fn add_time(
        out: &mut Self::Arguments, t: Option<OffsetDateTime>,
    ) -> Result<(), sqlx::error::BoxDynError> {
        use sqlx::Arguments;
        out.add(t)
    }
}

impl Backend for Sqlite {
    fn add_array(_: &mut Self::Arguments, _: Array) -> Result<(), sqlx::error::BoxDynError> {
        Err("SQLite has no arrays: this statement is for PostgreSQL only".into())
    }
    fn add_time(
        out: &mut Self::Arguments, t: Option<OffsetDateTime>,
    ) -> Result<(), sqlx::error::BoxDynError> {
        use sqlx::Arguments;
        out.add(t.map(sqlite_time))
    }
}

/// A time as SQLite stores it: text that sorts as the time does. sqlx's own encoding (RFC 3339)
/// drops the fraction's trailing zeros, so `…:03.12Z` sorted after `…:03.123Z` and `…:03Z`
/// after `…:03.5Z`; every `<=` on a due time and every `ORDER BY` of a time could be wrong by
/// up to a second. Fixed width, in UTC, to the microsecond (what PostgreSQL keeps too); the
/// migration `202611313_fixed_width_times` rewrote the rows stored before.
fn sqlite_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The value types an [`Arg`] binds with their own kind's NULL: each converts from its
/// `Option`, and a value converts as that option's `Some`.
trait Scalar {}
impl Scalar for i64 {}
impl Scalar for String {}
impl Scalar for bool {}
impl Scalar for OffsetDateTime {}

impl<T: Scalar> From<T> for Arg
where
    Option<T>: Into<Arg>,
{
    fn from(v: T) -> Self {
        Some(v).into()
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<Option<bool>> for Arg {
    fn from(v: Option<bool>) -> Self {
        Arg::Bool(v)
    }
}
impl From<Option<OffsetDateTime>> for Arg {
    fn from(v: Option<OffsetDateTime>) -> Self {
        Arg::Time(v)
    }
}

/// A row type both backends can decode: a `#[derive(sqlx::FromRow)]` struct or a tuple.
pub(crate) trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// The arguments of one statement for backend `DB`: the one place an [`Arg`] is bound.
fn arguments<DB: Backend>(args: Vec<Arg>) -> Result<DB::Arguments, StoreError>
where
    Option<i64>: for<'t> Encode<'t, DB> + Type<DB>,
    Option<String>: for<'t> Encode<'t, DB> + Type<DB>,
    Option<bool>: for<'t> Encode<'t, DB> + Type<DB>,
{
    use sqlx::Arguments;
    let mut out = DB::Arguments::default();
    for a in args {
        match a {
            Arg::Int(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Time(v) => DB::add_time(&mut out, v),
            Arg::Array(v) => DB::add_array(&mut out, v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// `$first, $first+1, …`: `n` placeholders for an `IN (…)` list.
pub(crate) fn marks(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4), …`: the tuples of a multi-row `VALUES` of `rows` rows of `cols` values.
pub(crate) fn values(rows: usize, cols: usize) -> String {
    values_after(0, rows, cols)
}

/// [`values`] numbered from `$skip+1`, after `skip` placeholders of the statement's own.
fn values_after(skip: usize, rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", marks(cols, skip + r * cols + 1)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement as SQLite should get it. Its `$N` placeholders are named parameters to SQLite,
/// and binding one by number looks its name up in a list: a 500-row `VALUES` of 6,500 of them
/// cost ~80 ms to bind, so a 100,000-row import spent 15 s there. When the placeholders are
/// `$1, $2, …` in order, each once (every multi-row `VALUES` and `IN` list here), plain `?`s
/// mean the same and bind directly; any other statement is left as written.
fn for_sqlite(sql: SqlStr) -> SqlStr {
    let text = sql.as_str();
    let mut out = String::with_capacity(text.len());
    let (mut next, mut quoted, mut chars) = (1usize, false, text.char_indices().peekable());
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '$' || quoted {
            out.push(c);
            continue;
        }
        let digits: String =
            std::iter::from_fn(|| chars.next_if(|(_, d)| d.is_ascii_digit()).map(|(_, d)| d))
                .collect();
        match digits.parse::<usize>() {
            Ok(n) if n == next => {
                next += 1;
                out.push('?');
            }
            // Out of order, repeated or not a placeholder: keep the statement as it is.
            _ if !digits.is_empty() => return sql,
            _ => out.push_str(&text[i..i + 1]),
        }
    }
    if next == 1 {
        return sql;
    }
    AssertSqlSafe(out).into_sql_str()
}

/// Where one statement runs: a transaction's connection or a pool, of either backend.
pub(crate) enum Link<S, P> {
    Sqlite(S),
    Postgres(P),
}

impl<'c, S, P> Link<S, P>
where
    S: sqlx::Executor<'c, Database = Sqlite>,
    P: sqlx::Executor<'c, Database = Postgres>,
{
    async fn execute(self, sql: SqlStr, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(match self {
            Link::Sqlite(c) => sqlx::query_with(for_sqlite(sql), arguments::<Sqlite>(args)?)
                .execute(c)
                .await?
                .rows_affected(),
            Link::Postgres(c) => sqlx::query_with(sql, arguments::<Postgres>(args)?)
                .execute(c)
                .await?
                .rows_affected(),
        })
    }

    /// The rows a read selects, as many as `take` says.
    async fn fetch<T: Record>(
        self, sql: SqlStr, args: Vec<Arg>, take: Take,
    ) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Link::Sqlite(c) => {
                let query = sqlx::query_as_with(for_sqlite(sql), arguments::<Sqlite>(args)?);
                take.rows(query, c).await?
            }
            Link::Postgres(c) => {
                let query = sqlx::query_as_with(sql, arguments::<Postgres>(args)?);
                take.rows(query, c).await?
            }
        })
    }
}

/// How many of the rows it selects a read takes.
#[derive(Clone, Copy)]
enum Take {
    All,
    /// The first, if there is one: the backend stops reading there.
    First,
}

impl Take {
    async fn rows<'c, DB, T>(
        self, query: QueryAs<'c, DB, T, DB::Arguments>, on: impl sqlx::Executor<'c, Database = DB>,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        DB: Database,
        DB::Arguments: IntoArguments<DB>,
        T: Send + Unpin + for<'r> FromRow<'r, DB::Row>,
    {
        match self {
            Take::All => query.fetch_all(on).await,
            Take::First => Ok(query.fetch_optional(on).await?.into_iter().collect()),
        }
    }
}

/// A write transaction over either backend; see [`Db::write`] for how it begins and ends.
/// `'c` is how long the data its body borrows lives (the transaction itself is the pool's):
/// naming it in the type lets the body's future borrow that data and still be `Send`.
pub(crate) enum Tx<'c> {
    /// With the companies whose row triggers it holds ([`Tx::hold_triggers`]).
    Sqlite(sqlx::Transaction<'c, Sqlite>, Held),
    Postgres(sqlx::Transaction<'c, Postgres>),
}

/// What a [`Db::write`] body returns: `Box::pin(async move { … })`.
pub(crate) type Body<'t, T, E> = std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

impl Tx<'_> {
    /// Commits, after doing what the row triggers a bulk statement held would have done
    /// ([`Tx::release_triggers`]).
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        self.release_triggers().await?;
        match self {
            Tx::Sqlite(t, _) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Queries for Tx<'_> {
    type Sqlite<'a>
        = &'a mut SqliteConnection
    where
        Self: 'a;
    type Postgres<'a>
        = &'a mut PgConnection
    where
        Self: 'a;
    fn link(&mut self) -> Link<&mut SqliteConnection, &mut PgConnection> {
        match self {
            Tx::Sqlite(t, _) => Link::Sqlite(&mut **t),
            Tx::Postgres(t) => Link::Postgres(&mut **t),
        }
    }
}

/// Reads outside a transaction, each statement on a connection of the pool: `db.pool()`.
pub(crate) struct Pool<'d>(&'d Db);

impl Db {
    pub(crate) fn pool(&self) -> Pool<'_> {
        Pool(self)
    }

    /// One page of the rows `q` selects, and how many there are in all.
    pub(crate) async fn page<T: Record>(
        &self, q: PageQuery<'_>,
    ) -> Result<(Vec<T>, i64), StoreError> {
        let (list_sql, page_args) = q.limited();
        let rows: Vec<T> = self
            .pool()
            .fetch_all(AssertSqlSafe(list_sql), page_args)
            .await?;
        let total = self.total(q, rows.len()).await?;
        Ok((rows, total))
    }

    /// [`Db::page`] for a page a person or a client reads often, its rows read as
    /// [`Db::fetch_packed`] reads them (`cols` and `order` as there).
    pub(crate) async fn packed_page<T: Record + serde::de::DeserializeOwned>(
        &self, q: PageQuery<'_>, cols: &str, order: &str,
    ) -> Result<(Vec<T>, i64), StoreError> {
        let (list_sql, page_args) = q.limited();
        let rows: Vec<T> = self.fetch_packed(&list_sql, cols, order, page_args).await?;
        let total = self.total(q, rows.len()).await?;
        Ok((rows, total))
    }

    /// How many rows there are in all, `fetched` of them on the page. A page that came back
    /// short holds the last of them, so they are its offset plus its rows, and `count_sql`
    /// need not run: a tree's tier or branch of under a page (most of them) costs one
    /// statement, not two. An empty page past the first says nothing (the rows may end
    /// before it), so it counts.
    async fn total(&self, q: PageQuery<'_>, fetched: usize) -> Result<i64, StoreError> {
        let fetched = fetched as i64;
        if fetched < q.limit && (fetched > 0 || q.offset == 0) {
            return Ok(q.offset + fetched);
        }
        self.pool()
            .scalar(AssertSqlSafe(q.count_sql.to_owned()), q.args)
            .await
    }
}

/// One page of the rows `list_sql` selects ([`PageQuery::limited`] adds its LIMIT and OFFSET),
/// and how many there are in all (`count_sql`); both take `args`.
pub(crate) struct PageQuery<'a> {
    pub list_sql: &'a str,
    pub count_sql: &'a str,
    pub args: Vec<Arg>,
    pub limit: i64,
    pub offset: i64,
}

impl PageQuery<'_> {
    /// `list_sql` with a LIMIT and an OFFSET placeholder after `args`' own, and the arguments
    /// for all.
    fn limited(&self) -> (String, Vec<Arg>) {
        let n = self.args.len();
        let sql = format!("{} LIMIT ${} OFFSET ${}", self.list_sql, n + 1, n + 2);
        let args = self.args.iter().cloned();
        let args = args.chain([self.limit.into(), self.offset.into()]);
        (sql, args.collect())
    }
}

impl Db {
    /// The rows `sql` selects, for a page a person or a client reads often. `sql` selects
    /// `cols` (what `T` reads, in order; on the alias `c`) and the columns `order` sorts by.
    ///
    /// On SQLite every row crosses from sqlx's connection thread to the request's one at a
    /// time (a channel message and a thread wake-up each, plus a row of boxed values): a
    /// 100-code page cost ~1 ms more than a 1-code page. Packed by SQLite into one JSON array
    /// (`json_array` per row), the page crosses once: page 1 went from 811 to 2,303 req/s.
    /// PostgreSQL reads its rows from one buffered reply and takes them as they are.
    pub(crate) async fn fetch_packed<T: Record + serde::de::DeserializeOwned>(
        &self, sql: &str, cols: &str, order: &str, args: impl IntoIterator<Item = Arg>,
    ) -> Result<Vec<T>, StoreError> {
        self.unpacked(
            sql,
            || {
                format!(
                    "SELECT json_group_array(json_array({cols}) ORDER BY {order}) FROM ({sql}) c"
                )
            },
            args,
        )
        .await
    }

    /// [`Db::fetch_packed`] for results of any size (an export job's 100,000 rows): SQLite
    /// packs them [`PACK`] to an array, the arrays in the rows' order, so no one text holds
    /// them all and each is dropped once its rows are read.
    pub(crate) async fn fetch_packs<T: Record + serde::de::DeserializeOwned>(
        &self, sql: &str, cols: &str, order: &str, args: impl IntoIterator<Item = Arg>,
    ) -> Result<Vec<T>, StoreError> {
        // The `ORDER BY` inside the aggregate keeps each array in the rows' order.
        let packed = || {
            format!(
                "SELECT json_group_array(json_array({cols}) ORDER BY n) FROM (SELECT \
                 ROW_NUMBER() OVER (ORDER BY {order}) AS n, c.* FROM ({sql}) c) c GROUP BY \
                 (n - 1) / {PACK} ORDER BY MIN(n)"
            )
        };
        self.unpacked(sql, packed, args).await
    }

    /// `sql`'s rows: as they come on PostgreSQL; on SQLite, from the JSON arrays that `packed`
    /// (a statement over `sql`) selects, one a row, in order. The first array's rows are kept
    /// as they are (a page's only array is not copied); the others are added behind them.
    async fn unpacked<T: Record + serde::de::DeserializeOwned>(
        &self, sql: &str, packed: impl FnOnce() -> String, args: impl IntoIterator<Item = Arg>,
    ) -> Result<Vec<T>, StoreError> {
        if self.pool().postgres() {
            return self
                .pool()
                .fetch_all(AssertSqlSafe(sql.to_owned()), args)
                .await;
        }
        let packs: Vec<(String,)> = self.pool().fetch_all(AssertSqlSafe(packed()), args).await?;
        let mut packs = packs.into_iter();
        let Some(mut rows) = packs
            .next()
            .map(|(first,)| unpack::<T>(&first))
            .transpose()?
        else {
            return Ok(Vec::new());
        };
        rows.reserve_exact(packs.len() * PACK);
        for (pack,) in packs {
            rows.extend(unpack::<T>(&pack)?);
        }
        Ok(rows)
    }
}

/// Rows per JSON array when SQLite packs a result of any size ([`Db::fetch_packs`]).
const PACK: usize = 1000;

/// The rows of one array SQLite packed.
fn unpack<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

impl Queries for Pool<'_> {
    type Sqlite<'a>
        = &'a sqlx::SqlitePool
    where
        Self: 'a;
    type Postgres<'a>
        = &'a sqlx::PgPool
    where
        Self: 'a;
    fn link(&mut self) -> Link<&sqlx::SqlitePool, &sqlx::PgPool> {
        match self.0 {
            Db::Sqlite(p) => Link::Sqlite(p),
            Db::Postgres(p) => Link::Postgres(p),
        }
    }
}

/// The read and write methods, the same on a transaction ([`Tx`]) and on the pool
/// ([`Db::pool`]). Each takes SQL text and its arguments, `[a.into(), b.into()]`.
///
/// They return `impl Future + Send` rather than being `async fn`: the bound is then proven here,
/// once, instead of at each caller, where the compiler cannot prove it for futures borrowing
/// the caller's data (axum handlers and the worker need `Send`).
pub(crate) trait Queries {
    type Sqlite<'a>: sqlx::Executor<'a, Database = Sqlite>
    where
        Self: 'a;
    type Postgres<'a>: sqlx::Executor<'a, Database = Postgres>
    where
        Self: 'a;

    fn link(&mut self) -> Link<Self::Sqlite<'_>, Self::Postgres<'_>>;

    /// Whether statements run on PostgreSQL: a bulk write may take its arrays there.
    fn postgres(&mut self) -> bool {
        matches!(self.link(), Link::Postgres(_))
    }

    /// Runs a statement; the number of rows it changed.
    fn execute(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.link()
            .execute(sql.into_sql_str(), args.into_iter().collect())
    }

    fn fetch_all<T: Record>(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send {
        self.link()
            .fetch(sql.into_sql_str(), args.into_iter().collect(), Take::All)
    }

    fn fetch_optional<T: Record>(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        let rows = self
            .link()
            .fetch(sql.into_sql_str(), args.into_iter().collect(), Take::First);
        async move { Ok(rows.await?.pop()) }
    }

    /// The one row the statement returns; none is an error.
    fn fetch_one<T: Record>(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        let row = self.fetch_optional(sql, args);
        async move { row.await?.ok_or(StoreError::Db(sqlx::Error::RowNotFound)) }
    }

    /// The first column of the one row the statement returns.
    fn scalar<T>(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send
    where
        (T,): Record,
    {
        let row = self.fetch_one::<(T,)>(sql, args);
        async move { Ok(row.await?.0) }
    }

    /// The first column of the row the statement returns, if it returns one.
    fn scalar_optional<T>(
        &mut self, sql: impl SqlSafeStr, args: impl IntoIterator<Item = Arg>,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send
    where
        (T,): Record,
    {
        let row = self.fetch_optional::<(T,)>(sql, args);
        async move { Ok(row.await?.map(|(v,)| v)) }
    }
}

#[cfg(test)]
mod tests {
    use super::{Array, SqlStr, for_sqlite, marks, rows_per_statement, rows_table, values};

    #[test]
    fn placeholders_count_on_from_where_they_start() {
        assert_eq!(marks(3, 2), "$2, $3, $4");
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(1, 1), "($1)");
    }

    #[test]
    fn sqlite_gets_plain_placeholders_only_where_they_mean_the_same() {
        let plain = |sql: &'static str| for_sqlite(SqlStr::from_static(sql)).as_str().to_owned();
        assert_eq!(
            plain("INSERT INTO t VALUES ($1, $2), ($3, $4)"),
            "INSERT INTO t VALUES (?, ?), (?, ?)"
        );
        // Used twice, out of order, or inside a string: as written.
        for kept in [
            "SELECT 1 WHERE a = $1 OR b = $1",
            "SELECT 1 WHERE a = $2 AND b = $1",
            "SELECT '$1', $2",
        ] {
            assert_eq!(plain(kept), kept);
        }
        assert_eq!(plain("SELECT '$' || $1"), "SELECT '$' || ?");
    }

    /// The rows' table numbers its placeholders after the statement's own, row by row on
    /// SQLite (so they stay in order for plain `?`s) and one array a column on PostgreSQL.
    #[test]
    fn a_rows_table_binds_after_the_statements_own_placeholders() {
        let columns = || {
            vec![
                Array::Int(vec![Some(7), Some(8)]),
                Array::Text(vec![Some("a".into()), None]),
            ]
        };
        let (sql, args) = rows_table(false, 2, columns());
        assert_eq!(sql, "(VALUES ($3, $4), ($5, $6)) AS v");
        let got: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(
            got,
            [
                "Int(Some(7))",
                "Text(Some(\"a\"))",
                "Int(Some(8))",
                "Text(None)"
            ]
        );
        let statement = format!("UPDATE t SET a = $1, b = $2 FROM {sql}");
        let plain = for_sqlite(SqlStr::from_static(statement.leak()));
        assert!(!plain.as_str().contains('$'), "{}", plain.as_str());
        let (sql, args) = rows_table(true, 2, columns());
        assert_eq!(
            sql,
            "UNNEST($3::bigint[], $4::text[]) AS v(column1, column2)"
        );
        assert_eq!(args.len(), 2);
        assert_eq!(rows_per_statement(false, 3, 6), 5_460);
        assert_eq!(rows_per_statement(true, 3, 6), usize::MAX);
    }
}

/// Decoding rows SQLite packed into one JSON array (`json_array` per row).
pub(crate) mod packed {
    use serde::{Deserialize, Deserializer, de::Error};

    /// SQLite's booleans are 0 and 1.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(i64::deserialize(d)? != 0)
    }

    pub fn option_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(|v| v != 0))
    }

    /// A state stored by name, decoded strictly.
    pub fn stored<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<String>,
        T::Error: std::fmt::Display,
    {
        T::try_from(String::deserialize(d)?).map_err(D::Error::custom)
    }

    /// [`stored`], or nothing.
    pub fn option_stored<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<String>,
        T::Error: std::fmt::Display,
    {
        Option::<String>::deserialize(d)?
            .map(T::try_from)
            .transpose()
            .map_err(D::Error::custom)
    }
}

//! The PostgreSQL wire-protocol listener: `psql`, psycopg, DBeaver and Grafana talk to the
//! [`SqlEngine`] through pgwire and datafusion-postgres.
//!
//! datafusion-postgres does the protocol work (simple and extended queries, `pg_catalog`,
//! `SET`/`SHOW`, transactions, cursors). This module adds what a node needs on top:
//! MD5 password authentication for one user with failed attempts logged and rate-limited per
//! client address, a read-only guard (writes get SQLSTATE `25006`), the node's time limit on
//! every query (planning and streaming rows), cancellation by the wire `CancelRequest` and by
//! `pg_cancel_backend(pid)`, and errors mapped to their SQLSTATE.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{ColumnarValue, LogicalPlan, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, METADATA_USER, PgWireConnectionState,
    PgWireServerHandlers, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::{Authentication, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::sql::{SqlEngine, SqlError, check_read_only};

/// Failed password attempts allowed per client address within [`FAIL_WINDOW`].
pub const MAX_FAILED_LOGINS: u32 = 5;
/// Window of the failed-login limit; an address over it waits this long.
pub const FAIL_WINDOW: Duration = Duration::from_secs(60);

/// How the listener authenticates.
#[derive(Clone)]
pub struct PgAuth {
    /// The one user name.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl Debug for PgAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuth")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A session's cancel switch: bumping the generation cancels the query in flight.
#[derive(Debug)]
struct Conn {
    secret: SecretKey,
    cancel: watch::Sender<u64>,
}

/// Sessions by backend pid, for `CancelRequest` and `pg_cancel_backend`.
#[derive(Debug, Default)]
struct Sessions {
    by_pid: Mutex<HashMap<i32, Arc<Conn>>>,
}

impl Sessions {
    fn cancel(&self, pid: i32, secret: Option<&SecretKey>) -> bool {
        let conn = self.by_pid.lock().ok().and_then(|m| m.get(&pid).cloned());
        match conn {
            Some(c) if secret.is_none_or(|s| s.to_bytes() == c.secret.to_bytes()) => {
                c.cancel.send_modify(|g| *g += 1);
                true
            }
            _ => false,
        }
    }
}

/// Unregisters a session when its connection ends.
#[derive(Debug)]
struct SessionGuard {
    pid: i32,
    sessions: Arc<Sessions>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.sessions.by_pid.lock() {
            m.remove(&self.pid);
        }
    }
}

/// Failed logins per client address: (count, window start).
#[derive(Debug, Default)]
struct Failures(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl Failures {
    /// Seconds to wait before `ip` may try again, if it is over the limit.
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let m = self.0.lock().ok()?;
        let (n, since) = m.get(&ip)?;
        let left = FAIL_WINDOW.checked_sub(since.elapsed())?;
        (*n >= MAX_FAILED_LOGINS).then(|| left.as_secs().max(1))
    }

    fn fail(&self, ip: IpAddr) -> u32 {
        let Ok(mut m) = self.0.lock() else { return 0 };
        let e = m.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() > FAIL_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.0
    }

    fn succeed(&self, ip: IpAddr) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&ip);
        }
    }
}

struct Shared {
    auth: PgAuth,
    sessions: Arc<Sessions>,
    failures: Failures,
    pids: RandomPidSecretKeyGenerator,
    params: DefaultServerParameterProvider,
}

/// Per-connection MD5 authentication (the salt lives in the handler, which pgwire creates for
/// each connection).
struct Startup {
    shared: Arc<Shared>,
    salt: Mutex<[u8; 4]>,
}

fn user_error(sqlstate: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        sqlstate.into(),
        message.into(),
    )))
}

fn fatal(sqlstate: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        sqlstate.into(),
        message.into(),
    )))
}

/// PostgreSQL's MD5 response: `md5` + md5(md5(password ‖ user) ‖ salt).
fn md5_response(user: &str, password: &str, salt: &[u8; 4]) -> String {
    pgwire::api::auth::md5pass::hash_md5_password(user, password, salt)
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let ip = client.socket_addr().ip();
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                if let Some(wait) = self.shared.failures.blocked(ip) {
                    tracing::warn!(%ip, "pg login refused: too many failed password attempts");
                    return Err(fatal(
                        "28000",
                        format!("too many failed password attempts from {ip}; retry in {wait} s"),
                    ));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let salt: [u8; 4] = rand_salt();
                if let Ok(mut s) = self.salt.lock() {
                    *s = salt;
                }
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::MD5Password(salt.to_vec()),
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let salt = self.salt.lock().map(|s| *s).unwrap_or_default();
                let a = &self.shared.auth;
                let expected = md5_response(&a.user, &a.password, &salt);
                if user != a.user || pwd.password != expected {
                    let n = self.shared.failures.fail(ip);
                    tracing::warn!(%ip, %user, failures = n, "pg login failed: wrong user or password");
                    return Err(fatal(
                        "28P01",
                        format!("password authentication failed for user \"{user}\""),
                    ));
                }
                self.shared.failures.succeed(ip);
                let (pid, secret) = self.shared.pids.generate(&*client);
                client.set_pid_and_secret_key(pid, secret.clone());
                let (tx, _) = watch::channel(0u64);
                let conn = Arc::new(Conn { secret, cancel: tx });
                if let Ok(mut m) = self.shared.sessions.by_pid.lock() {
                    m.insert(pid, conn.clone());
                }
                client.session_extensions().insert(conn);
                client.session_extensions().insert(SessionGuard {
                    pid,
                    sessions: self.shared.sessions.clone(),
                });
                tracing::debug!(%ip, %user, pid, "pg session started");
                pgwire::api::auth::finish_authentication(client, &self.shared.params).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

fn rand_salt() -> [u8; 4] {
    rand::random()
}

/// Refuses writes and swallows `SET`s that the other hooks did not take (so a client cannot
/// change the shared session's settings).
struct ReadOnlyHook;

fn read_only_check(statement: &Statement) -> Option<PgWireResult<Response>> {
    match statement {
        Statement::Set(_) => Some(Ok(Response::Execution(Tag::new("SET")))),
        s => check_read_only(s)
            .err()
            .map(|e| Err(user_error(e.sqlstate, e.message))),
    }
}

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        read_only_check(statement)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match read_only_check(statement) {
            Some(Err(e)) => Some(Err(e)),
            _ => None,
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        read_only_check(statement)
    }
}

/// The query service: datafusion-postgres's, with every result stream under the time limit
/// and the session's cancel switch.
struct Service {
    inner: DfSessionService,
    limit: Duration,
}

const METADATA_STATEMENT_TIMEOUT: &str = "statement_timeout_ms";

impl Service {
    fn guard<C: ClientInfo + ?Sized>(&self, client: &C, started: Instant, r: Response) -> Response {
        let Response::Query(q) = r else { return r };
        let client_limit = client
            .metadata()
            .get(METADATA_STATEMENT_TIMEOUT)
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_millis);
        let limit = client_limit.map_or(self.limit, |c| c.min(self.limit));
        let cancel = client
            .session_extensions()
            .get::<Arc<Conn>>()
            .map(|c| c.cancel.subscribe());
        let QueryResponse {
            command_tag,
            row_schema,
            data_rows,
            ..
        } = q;
        let rows = Guarded {
            inner: Some(data_rows),
            deadline: Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::from_std(started) + limit,
            )),
            cancel: cancel.map(|mut rx| {
                rx.mark_unchanged();
                Box::pin(async move {
                    if rx.changed().await.is_err() {
                        futures::future::pending::<()>().await;
                    }
                }) as Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }),
            limit,
        };
        let mut out = QueryResponse::new(row_schema, rows);
        out.set_command_tag(&command_tag);
        Response::Query(out)
    }
}

struct Guarded {
    inner: Option<pgwire::api::results::SendableRowStream>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    cancel: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    limit: Duration,
}

impl Stream for Guarded {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.inner = None;
            let e = SqlError::timeout(self.limit);
            return Poll::Ready(Some(Err(user_error(e.sqlstate, e.message))));
        }
        if let Some(c) = self.cancel.as_mut()
            && c.as_mut().poll(cx).is_ready()
        {
            self.inner = None;
            let e = SqlError::cancelled();
            return Poll::Ready(Some(Err(user_error(e.sqlstate, e.message))));
        }
        match self.inner.as_mut().map(|s| s.poll_next_unpin(cx)) {
            Some(Poll::Ready(None)) | None => {
                self.inner = None;
                Poll::Ready(None)
            }
            Some(p) => p,
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Service {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = Instant::now();
        let limit = self.limit;
        let r = tokio::time::timeout(
            limit,
            <DfSessionService as SimpleQueryHandler>::do_query(&self.inner, client, query),
        )
        .await
        .map_err(|_| {
            let e = SqlError::timeout(limit);
            user_error(e.sqlstate, e.message)
        })??;
        Ok(r.into_iter()
            .map(|r| self.guard(client, started, r))
            .collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Service {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = <DfSessionService as ExtendedQueryHandler>::QueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.inner.query_parser()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let started = Instant::now();
        let limit = self.limit;
        let r = tokio::time::timeout(
            limit,
            <DfSessionService as ExtendedQueryHandler>::do_query(
                &self.inner,
                client,
                portal,
                max_rows,
            ),
        )
        .await
        .map_err(|_| {
            let e = SqlError::timeout(limit);
            user_error(e.sqlstate, e.message)
        })??;
        Ok(self.guard(client, started, r))
    }
}

/// Gives DataFusion errors their SQLSTATE.
struct Errors;

impl ErrorHandler for Errors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(b) = error {
            let e = if let Some(d) = b.downcast_ref::<datafusion::error::DataFusionError>() {
                Some(SqlError::from_df(d.clone_for_message()))
            } else if let Some(p) =
                b.downcast_ref::<datafusion::sql::sqlparser::parser::ParserError>()
            {
                Some(SqlError::syntax(&p.to_string()))
            } else {
                b.downcast_ref::<SqlError>().cloned()
            };
            if let Some(e) = e {
                if e.is_internal() {
                    tracing::error!(error = %e, "pg query failed inside Commons");
                }
                *error = user_error(e.sqlstate, e.message);
            }
        }
        if let PgWireError::UserError(info) = error
            && info.code == "28P01"
        {
            tracing::debug!(addr = %client.socket_addr(), "pg auth error sent");
        }
    }
}

/// `clone` for the parts of a DataFusion error that classification reads.
trait CloneForMessage {
    fn clone_for_message(&self) -> datafusion::error::DataFusionError;
}

impl CloneForMessage for datafusion::error::DataFusionError {
    fn clone_for_message(&self) -> datafusion::error::DataFusionError {
        use datafusion::error::DataFusionError as E;
        match self {
            E::SQL(p, b) => E::SQL(p.clone(), b.clone()),
            E::Plan(m) => E::Plan(m.clone()),
            E::NotImplemented(m) => E::NotImplemented(m.clone()),
            E::ResourcesExhausted(m) => E::ResourcesExhausted(m.clone()),
            E::Execution(m) => E::Execution(m.clone()),
            E::Configuration(m) => E::Configuration(m.clone()),
            E::Context(_, inner) | E::Diagnostic(_, inner) => inner.clone_for_message(),
            E::Shared(inner) => inner.clone_for_message(),
            E::External(b) => {
                if let Some(s) = b.downcast_ref::<SqlError>() {
                    E::External(Box::new(s.clone()))
                } else if let Some(d) = b.downcast_ref::<datafusion::error::DataFusionError>() {
                    d.clone_for_message()
                } else {
                    E::Internal(b.to_string())
                }
            }
            E::SchemaError(s, _) => E::Plan(s.to_string()),
            other => E::Internal(other.to_string()),
        }
    }
}

struct Cancel(Arc<Sessions>);

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, r: CancelRequest) {
        let ok = self.0.cancel(r.pid, Some(&r.secret_key));
        tracing::info!(pid = r.pid, found = ok, "pg cancel request");
    }
}

struct Handlers {
    service: Arc<Service>,
    shared: Arc<Shared>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Startup {
            shared: self.shared.clone(),
            salt: Mutex::new([0; 4]),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(Errors)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(Cancel(self.shared.sessions.clone()))
    }
}

fn cancel_backend_udf(sessions: Arc<Sessions>) -> ScalarUDF {
    use datafusion::arrow::array::{Array, AsArray, BooleanArray};
    use datafusion::arrow::datatypes::{DataType, Int32Type};
    let f = move |args: &[ColumnarValue]| {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let pids = arrays[0].as_primitive::<Int32Type>();
        let out: BooleanArray = (0..pids.len())
            .map(|i| Some(!pids.is_null(i) && sessions.cancel(pids.value(i), None)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    };
    create_udf(
        "pg_cancel_backend",
        vec![DataType::Int32],
        DataType::Boolean,
        Volatility::Volatile,
        Arc::new(f),
    )
}

/// The listener, bound and ready to [`serve`](PgServer::serve).
pub struct PgServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
}

impl Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl PgServer {
    /// Bind `addr` for `engine`, authenticating with `auth`.
    pub async fn bind(
        addr: SocketAddr,
        engine: &SqlEngine,
        auth: PgAuth,
    ) -> std::io::Result<PgServer> {
        let listener = TcpListener::bind(addr).await?;
        let ctx = engine.context();
        let sessions = Arc::new(Sessions::default());
        ctx.register_udf(cancel_backend_udf(sessions.clone()));
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(CursorStatementHook),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(ReadOnlyHook),
        ];
        let mut params = DefaultServerParameterProvider::default();
        params.default_transaction_read_only = true;
        params.is_superuser = false;
        let shared = Arc::new(Shared {
            auth,
            sessions,
            failures: Failures::default(),
            pids: RandomPidSecretKeyGenerator::default(),
            params,
        });
        let service = Arc::new(Service {
            inner: DfSessionService::new_with_hooks(ctx, hooks),
            limit: engine.config().time_limit,
        });
        Ok(PgServer {
            listener,
            handlers: Arc::new(Handlers { service, shared }),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections until the task is dropped or aborted.
    pub async fn serve(self) {
        loop {
            match self.listener.accept().await {
                Ok((socket, addr)) => {
                    let h = self.handlers.clone();
                    tokio::spawn(async move {
                        if let Err(e) = pgwire::tokio::process_socket(socket, None, h).await {
                            tracing::debug!(%addr, error = %e, "pg connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pg accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

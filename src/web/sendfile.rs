//! Zero-copy file bodies over plain HTTP/1.1: the kernel's `sendfile(2)` moves a media file's
//! pages from the page cache to the socket, as nginx's `sendfile on` does, instead of reading
//! them into a buffer, copying that into actix's write buffer and copying it again into the
//! socket (three passes over every byte of every segment).
//!
//! actix-web has no such body, so the server is assembled here from its parts (the same ones
//! `HttpServer` uses) over a thin wrapper of the TCP stream, [`Conn`]. A handler that wants to
//! send a file gives the response a [`SendfileBody`] (and an explicit `Content-Length`): the body
//! leaves the file in the connection's [`Slot`] and yields nothing. actix writes the response
//! head, and calls `poll_flush` on the stream only once its write buffer has been written out
//! whole — so that is where [`Conn`] sends the file, and the bytes follow the head in order.
//! When the file is sent, the body ends and the connection goes on to the next request.
//!
//! A request that did not come through [`Conn`] (there is no [`Slot`] on the connection) is
//! served the ordinary way; see [`slot_of`].

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Server, ServiceFactory};
use actix_web::rt::net::TcpStream;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, dev::Service};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// At most this much per `sendfile` call (the kernel caps one call near 2 GiB anyway).
const MAX_PER_CALL: usize = 1 << 30;

/// One connection's file waiting to be sent after the response head.
#[derive(Debug, Default)]
enum Job {
    #[default]
    Idle,
    Send {
        file: File,
        offset: u64,
        left: u64,
    },
    Sent,
    Failed(io::ErrorKind),
}

/// Shared by a connection's stream and the body of its current response.
#[derive(Debug, Clone, Default)]
pub struct Slot(Arc<Mutex<Job>>);

/// The slot of the connection `req` came in on, when it was accepted by [`server`].
pub fn slot_of(req: &HttpRequest) -> Option<Slot> {
    req.conn_data::<Slot>().cloned()
}

/// A response body of `len` bytes of `file` from `offset`, sent by the connection itself. Use it
/// with `HttpResponseBuilder::no_chunking(len)` so the head says how long it is.
pub struct SendfileBody {
    slot: Slot,
    job: Option<(File, u64, u64)>,
}

impl SendfileBody {
    pub fn new(slot: Slot, file: File, offset: u64, len: u64) -> SendfileBody {
        SendfileBody { slot, job: Some((file, offset, len)) }
    }
}

impl MessageBody for SendfileBody {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        // `Stream` with `no_chunking`: actix writes our Content-Length and passes no bytes of
        // its own (a `Sized` body would make it count the bytes it is given).
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, io::Error>>> {
        let this = self.get_mut();
        let Ok(mut job) = this.slot.0.lock() else {
            return Poll::Ready(Some(Err(io::Error::other("sendfile slot poisoned"))));
        };
        if let Some((file, offset, left)) = this.job.take() {
            // Handed over; the stream's next flush (right after this poll) starts sending and
            // wakes the connection when it is done.
            *job = Job::Send { file, offset, left };
            return Poll::Pending;
        }
        match std::mem::take(&mut *job) {
            Job::Sent => Poll::Ready(None),
            Job::Failed(kind) => Poll::Ready(Some(Err(kind.into()))),
            // Still sending: the stream wakes the connection when it can write again.
            pending @ Job::Send { .. } => {
                *job = pending;
                Poll::Pending
            }
            Job::Idle => Poll::Ready(Some(Err(io::Error::other("sendfile job lost")))),
        }
    }
}

/// The TCP stream of a connection accepted by [`server`], which sends the slot's file when
/// actix flushes.
pub struct Conn {
    tcp: TcpStream,
    slot: Slot,
    /// TCP_CORK is on: set when a file is about to follow the head, so that head and file
    /// leave in full-sized segments (nginx's `tcp_nopush`); cleared once the file is sent.
    corked: bool,
}

impl Conn {
    /// Cork before a head whose file follows (the body hands its file over before actix writes
    /// the head).
    fn cork_for_file(&mut self) {
        if !self.corked && self.slot.0.lock().is_ok_and(|job| matches!(*job, Job::Send { .. })) {
            self.corked = rustix::net::sockopt::set_tcp_cork(&self.tcp, true).is_ok();
        }
    }

    fn uncork(&mut self) {
        if self.corked {
            // Pushes out the last partial segment at once.
            let _ = rustix::net::sockopt::set_tcp_cork(&self.tcp, false);
            self.corked = false;
        }
    }

    /// Send what the slot holds; `Ready(Ok)` when nothing is left to send.
    fn send_file(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = self.send_slot(cx);
        if polled.is_ready() {
            self.uncork();
        }
        polled
    }

    fn send_slot(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Ok(mut job) = self.slot.0.lock() else {
            return Poll::Ready(Err(io::Error::other("slot poisoned")));
        };
        let Job::Send { file, offset, left } = &mut *job else { return Poll::Ready(Ok(())) };
        if !self.corked {
            self.corked = rustix::net::sockopt::set_tcp_cork(&self.tcp, true).is_ok();
        }
        while *left > 0 {
            match self.tcp.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    *job = Job::Failed(e.kind());
                    cx.waker().wake_by_ref();
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => {}
            }
            let want = (*left).min(MAX_PER_CALL as u64) as usize;
            let mut at = *offset;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, &*file, Some(&mut at), want).map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    // The file is shorter than it was when the head was written.
                    *job = Job::Failed(io::ErrorKind::UnexpectedEof);
                    cx.waker().wake_by_ref();
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => {
                    *offset += n as u64;
                    *left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    *job = Job::Failed(e.kind());
                    cx.waker().wake_by_ref();
                    return Poll::Ready(Err(e));
                }
            }
        }
        *job = Job::Sent;
        // The body is polled again on the connection's next turn and ends the response.
        cx.waker().wake_by_ref();
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.cork_for_file();
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.cork_for_file();
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    /// actix calls this only when everything it wrote so far is in the socket: the response
    /// head is out, so the file may follow.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.send_file(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// How the server is run: the settings `reelbox serve` gave `HttpServer`.
pub struct Settings {
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
}

/// Asked about every request before the app: `Some` is the answer, `None` passes the request
/// on (see `media_files::fast`).
pub type Shortcut = Arc<dyn Fn(&actix_http::Request) -> Option<actix_http::Response<BoxBody>> + Send + Sync>;

/// An HTTP/1.1 server on `listener` whose connections can send files with `sendfile` — what
/// `HttpServer::new(factory).listen(listener).run()` builds, with the same defaults (keep-alive
/// 5 s, request head within 5 s, disconnect 1 s, graceful shutdown of idle connections), over
/// [`Conn`], with `shortcut` asked before the app. Signals are left to the caller.
pub fn server<F, I, S, B>(
    factory: F,
    listener: std::net::TcpListener,
    settings: Settings,
    shortcut: Shortcut,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<actix_http::Response<B>> + 'static,
    <S::Service as Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    use actix_service::{ServiceFactoryExt, apply_fn_factory, fn_service, map_config};
    use futures_util::future::Either;
    let addr: SocketAddr = listener.local_addr()?;
    let builder = actix_server::Server::build()
        .workers(settings.workers)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_secs);
    let shutdown = builder.graceful_shutdown_signal();
    let builder = builder.listen("reelbox-http", listener, move || {
        let shutdown = shutdown.clone();
        let host = addr.to_string();
        let app = factory().into_factory().map_err(|err| err.into().error_response());
        // `AppConfig::new` is private; this is the constructor actix's own test server uses.
        let app = map_config(app, move |_| AppConfig::__priv_test_new(false, host.clone(), addr));
        let shortcut = shortcut.clone();
        let app = apply_fn_factory(app, move |req: actix_http::Request, app: &_| match shortcut(&req) {
            Some(answer) => Either::Left(std::future::ready(Ok(answer))),
            None => {
                let answer = app.call(req);
                Either::Right(async move { answer.await.map(|res| res.into().map_into_boxed_body()) })
            }
        });
        let h1 = actix_http::HttpService::<Conn, _, _>::build()
            .graceful_shutdown_signal(move || {
                let signal = shutdown.clone();
                async move { signal.notified().await }
            })
            .client_request_timeout(std::time::Duration::from_secs(5))
            .client_disconnect_timeout(std::time::Duration::from_secs(1))
            .local_addr(addr)
            .on_connect_ext(|conn: &Conn, ext: &mut actix_web::dev::Extensions| {
                ext.insert(conn.slot.clone());
            })
            .h1(app);
        fn_service(|tcp: TcpStream| async move {
            let peer = tcp.peer_addr().ok();
            // As HttpServer does for plain TCP: no Nagle delay on small responses.
            let _ = tcp.set_nodelay(true);
            Ok::<_, actix_http::error::DispatchError>((
                Conn { tcp, slot: Slot::default(), corked: false },
                peer,
            ))
        })
        .and_then(h1)
    })?;
    Ok(builder.run())
}

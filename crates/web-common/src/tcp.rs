//! Socket options for accepted connections.

use std::any::Any;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

/// `HttpServer::on_connect` hook: turns Nagle's algorithm off on every accepted connection.
///
/// actix-web leaves it on. A response whose head and body leave in two writes (every streamed
/// body, such as the gateway's proxied ones) then holds its second segment until the client
/// acknowledges the first, and clients delay acknowledgements by up to 40 ms: a tail latency
/// that has nothing to do with the work done.
pub fn no_delay(connection: &dyn Any, _: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<TcpStream>() {
        let _ = stream.set_nodelay(true);
    }
}

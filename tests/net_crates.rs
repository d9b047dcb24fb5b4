//! Unmodified synchronous crates from the registry, generic over
//! `Read + Write`, running over greenhub's `TcpStream` on greenlets: a
//! WebSocket server and clients (tungstenite), many connections at once on
//! one hub.

mod common;

use std::time::Duration;

use common::in_each_mode;
use greenhub::net::{TcpListener, TcpStream};
use tungstenite::Message;

#[test]
fn websocket_echo_over_greenhub_sockets() {
    in_each_mode("websocket", |_| {
        const CLIENTS: usize = 50;
        const MSGS: usize = 20;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = greenhub::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                let (stream, _) = listener.accept().unwrap();
                conns.push(greenhub::spawn(move || {
                    // tungstenite's blocking server handshake, unchanged.
                    let mut ws = tungstenite::accept(stream).unwrap();
                    let mut echoed = 0;
                    loop {
                        match ws.read() {
                            Ok(Message::Text(t)) => {
                                ws.send(Message::Text(format!("echo:{t}").into())).unwrap();
                                echoed += 1;
                            }
                            Ok(Message::Close(_)) => {
                                let _ = ws.flush();
                                return echoed;
                            }
                            Ok(_) => {}
                            Err(tungstenite::Error::ConnectionClosed) => return echoed,
                            Err(e) => panic!("server: {e}"),
                        }
                    }
                }));
            }
            conns.into_iter().map(|c| c.join().unwrap()).sum::<usize>()
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                greenhub::spawn(move || {
                    // A host name: resolved on the blocking pool.
                    let stream = TcpStream::connect(("localhost", port))
                        .or_else(|_| TcpStream::connect(("127.0.0.1", port)))
                        .unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let url = format!("ws://localhost:{port}/chat");
                    let (mut ws, resp) = tungstenite::client(url.as_str(), stream).unwrap();
                    assert_eq!(resp.status(), 101);
                    for m in 0..MSGS {
                        ws.send(Message::Text(format!("{i}-{m}").into())).unwrap();
                        // Yield between messages so the clients interleave.
                        greenhub::yield_now();
                        match ws.read().unwrap() {
                            Message::Text(t) => assert_eq!(t.as_str(), format!("echo:{i}-{m}")),
                            other => panic!("client {i}: unexpected {other:?}"),
                        }
                    }
                    ws.close(None).unwrap();
                    // Drain until the server's close frame.
                    loop {
                        match ws.read() {
                            Ok(_) => {}
                            Err(tungstenite::Error::ConnectionClosed) => break,
                            Err(e) => panic!("client {i}: {e}"),
                        }
                    }
                    MSGS
                })
            })
            .collect();
        let sent: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(server.join().unwrap(), sent);
        assert_eq!(sent, CLIENTS * MSGS);
    });
}

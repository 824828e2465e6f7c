//! A typed client of the HTTP API (`docs/api.md`), shared by the CLI's
//! client commands, the end-to-end tests and the benchmark.
//!
//! Plain HTTP (reqwest without TLS, so no OpenSSL); put a TLS-terminating
//! proxy in front of a remote server. Errors keep the server's stable code.

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message as WsMessage;

use crate::http::dto::{
    AckBody, AckResults, BatchBody, BatchSent, ConsumeFrame, ConsumeSettle, ConsumeStart, Count,
    DeadLetterAction, DeadLetterList, DeadLetterMove, DeadReasonDto, Deleted, Deliveries, Done,
    ErrorResponse, Flow, FlowList, MessageList, NackBody, Overview, QueueList, QueueSpec,
    QueueSummary, ReceiveBody, RejectBody, SendBody, Sent, WhoAmI,
};

/// `id` as one URL path segment: everything but RFC 3986's unreserved
/// characters percent-encoded (correlation ids are free-form text).
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl ClientError {
    /// The server's error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    base_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:7600`),
    /// calling with `token` when given.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Client {
        Client {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, T), ClientError> {
        let text = self.call_text(method, path, body).await?;
        let url = format!("{}{path}", self.base_url);
        let value = serde_json::from_str(&text.1).map_err(|e| ClientError::Protocol {
            url,
            detail: e.to_string(),
        })?;
        Ok((text.0, value))
    }

    async fn call_text<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, String), ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            source: Box::new(e),
        };
        let response = req.send().await.map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(match serde_json::from_str::<ErrorResponse>(&text) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Protocol {
                    url,
                    detail: format!("HTTP {status}: {text}"),
                },
            });
        }
        Ok((status, text))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self.call::<(), T>(Method::GET, path, None).await?.1)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        Ok(self.call(Method::POST, path, Some(body)).await?.1)
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        self.call_text::<()>(Method::GET, "/healthz", None).await?;
        Ok(())
    }

    /// `GET /api/whoami`.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.get("/api/whoami").await
    }

    /// `GET /api/queues`.
    pub async fn queues(&self) -> Result<QueueList, ClientError> {
        self.get("/api/queues").await
    }

    /// `PUT /api/queues/{name}`: the summary, and `true` when newly declared.
    pub async fn declare(
        &self,
        name: &str,
        spec: &QueueSpec,
    ) -> Result<(QueueSummary, bool), ClientError> {
        let (status, summary) = self
            .call(Method::PUT, &format!("/api/queues/{name}"), Some(spec))
            .await?;
        Ok((summary, status == StatusCode::CREATED))
    }

    /// `GET /api/queues/{name}`.
    pub async fn queue(&self, name: &str) -> Result<QueueSummary, ClientError> {
        self.get(&format!("/api/queues/{name}")).await
    }

    /// `DELETE /api/queues/{name}`.
    pub async fn delete(&self, name: &str) -> Result<Deleted, ClientError> {
        Ok(self
            .call::<(), _>(Method::DELETE, &format!("/api/queues/{name}"), None)
            .await?
            .1)
    }

    /// `POST /api/queues/{name}/messages`.
    pub async fn send(&self, queue: &str, message: &SendBody) -> Result<Sent, ClientError> {
        self.post(&format!("/api/queues/{queue}/messages"), message)
            .await
    }

    /// `POST /api/queues/{name}/batch` (all or nothing).
    pub async fn send_batch(
        &self,
        queue: &str,
        messages: Vec<SendBody>,
    ) -> Result<BatchSent, ClientError> {
        self.post(
            &format!("/api/queues/{queue}/batch"),
            &BatchBody { messages },
        )
        .await
    }

    /// `GET /api/queues/{name}/messages?limit=`.
    pub async fn peek(&self, queue: &str, limit: u32) -> Result<MessageList, ClientError> {
        self.get(&format!("/api/queues/{queue}/messages?limit={limit}"))
            .await
    }

    /// `POST /api/queues/{name}/receive`.
    pub async fn receive(
        &self,
        queue: &str,
        body: &ReceiveBody,
    ) -> Result<Deliveries, ClientError> {
        self.post(&format!("/api/queues/{queue}/receive"), body)
            .await
    }

    /// `POST /api/ack`.
    pub async fn ack(&self, leases: Vec<String>) -> Result<AckResults, ClientError> {
        self.post("/api/ack", &AckBody { leases }).await
    }

    /// `POST /api/nack`.
    pub async fn nack(&self, body: &NackBody) -> Result<Done, ClientError> {
        self.post("/api/nack", body).await
    }

    /// `POST /api/reject`.
    pub async fn reject(&self, body: &RejectBody) -> Result<Done, ClientError> {
        self.post("/api/reject", body).await
    }

    /// `GET /api/queues/{name}/dead-letters`.
    pub async fn dead_letters(
        &self,
        queue: &str,
        reason: Option<DeadReasonDto>,
        limit: u32,
    ) -> Result<DeadLetterList, ClientError> {
        let reason = reason
            .map(|r| {
                let text = serde_json::to_value(r).expect("reason serializes");
                format!("&reason={}", text.as_str().unwrap_or_default())
            })
            .unwrap_or_default();
        self.get(&format!(
            "/api/queues/{queue}/dead-letters?limit={limit}{reason}"
        ))
        .await
    }

    /// `POST /api/queues/{name}/dead-letters/retry`.
    pub async fn retry_dead_letters(
        &self,
        queue: &str,
        body: &DeadLetterAction,
    ) -> Result<Count, ClientError> {
        self.post(&format!("/api/queues/{queue}/dead-letters/retry"), body)
            .await
    }

    /// `POST /api/queues/{name}/dead-letters/purge`.
    pub async fn purge_dead_letters(
        &self,
        queue: &str,
        body: &DeadLetterAction,
    ) -> Result<Count, ClientError> {
        self.post(&format!("/api/queues/{queue}/dead-letters/purge"), body)
            .await
    }

    /// `POST /api/queues/{name}/dead-letters/move`.
    pub async fn move_dead_letters(
        &self,
        queue: &str,
        body: &DeadLetterMove,
    ) -> Result<Count, ClientError> {
        self.post(&format!("/api/queues/{queue}/dead-letters/move"), body)
            .await
    }

    /// `GET /api/overview`.
    pub async fn overview(&self) -> Result<Overview, ClientError> {
        self.get("/api/overview").await
    }

    /// `GET /api/flows/lookup/{id}`: the flow of a correlation, message or
    /// trace id.
    pub async fn flow(&self, id: &str) -> Result<Flow, ClientError> {
        self.get(&format!("/api/flows/lookup/{}", segment(id)))
            .await
    }

    /// `GET /api/flows`: recent flows.
    pub async fn recent_flows(&self, limit: u32) -> Result<FlowList, ClientError> {
        self.get(&format!("/api/flows?limit={limit}")).await
    }

    /// A raw call: the status and body text of `method path`, errors
    /// included (the auth matrix and other black-box tests use it).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), ClientError> {
        let url = format!("{}{path}", self.base_url);
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Protocol {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            source: Box::new(e),
        };
        let response = req.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            // An endless stream: the status is the answer.
            return Ok((status, String::new()));
        }
        Ok((status, response.text().await.map_err(transport)?))
    }

    /// Opens a streaming consumer on `queue` (WebSocket `/api/consume/{name}`).
    pub async fn consume(
        &self,
        queue: &str,
        start: &ConsumeStart,
    ) -> Result<WsConsumer, ClientError> {
        let url = format!(
            "{}/api/consume/{queue}",
            self.base_url.replacen("http", "ws", 1)
        );
        let protocol = |detail: String| ClientError::Protocol {
            url: url.clone(),
            detail,
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| protocol(e.to_string()))?;
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| protocol("token is not a valid header value".to_owned()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    let body = response
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    match serde_json::from_str::<ErrorResponse>(&body) {
                        Ok(e) => ClientError::Api {
                            status: response.status().as_u16(),
                            code: e.error.code,
                            message: e.error.message,
                        },
                        Err(_) => protocol(format!("HTTP {}", response.status())),
                    }
                }
                other => ClientError::Transport {
                    url: url.clone(),
                    source: Box::new(other),
                },
            })?;
        let mut consumer = WsConsumer { socket, url };
        consumer.send_json(start).await?;
        Ok(consumer)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A streaming consumer: read frames with [`WsConsumer::next`], settle with
/// [`WsConsumer::settle`].
pub struct WsConsumer {
    socket: Socket,
    url: String,
}

impl WsConsumer {
    async fn send_json<T: Serialize>(&mut self, value: &T) -> Result<(), ClientError> {
        let text = serde_json::to_string(value).expect("DTOs serialize");
        self.socket
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(|e| ClientError::Transport {
                url: self.url.clone(),
                source: Box::new(e),
            })
    }

    /// The next frame from the server; `None` once it closed.
    pub async fn next(&mut self) -> Result<Option<ConsumeFrame>, ClientError> {
        loop {
            match self.socket.next().await {
                None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str()).map(Some).map_err(|e| {
                        ClientError::Protocol {
                            url: self.url.clone(),
                            detail: e.to_string(),
                        }
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(ClientError::Transport {
                        url: self.url.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
    }

    /// Sends a settle frame (`ack`, `nack` or `reject`).
    pub async fn settle(&mut self, frame: &ConsumeSettle) -> Result<(), ClientError> {
        self.send_json(frame).await
    }

    /// Acknowledges leases.
    pub async fn ack(&mut self, leases: Vec<String>) -> Result<(), ClientError> {
        self.settle(&ConsumeSettle {
            ack: Some(leases),
            ..ConsumeSettle::default()
        })
        .await
    }

    /// Closes the connection; unsettled deliveries are released.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let _ = self.socket.close(None).await;
        Ok(())
    }
}

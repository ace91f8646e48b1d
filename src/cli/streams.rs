//! `tessera stream list|show|disable`: the Shared Signals receivers' streams, as an
//! operator sees them. Disabling one is the transmitter's own decision, so the stream's
//! receiver is told first with a stream-updated event (SSF §8.1.5).

use super::{print_json, when};
use crate::domain::client::ClientId;
use crate::domain::signals::{Delivery, Stream, StreamStatus};
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// List streams, all or one receiver's.
    List {
        /// Only the streams of this receiver (client id).
        #[arg(long)]
        receiver: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one stream.
    Show {
        stream_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a stream: nothing more is delivered or held. The receiver is told first.
    Disable {
        stream_id: String,
        /// Told to the receiver in the stream-updated event.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(command: StreamCommand, storage: &dyn Storage, events: &Emitter) -> anyhow::Result<()> {
    match command {
        StreamCommand::List { receiver, json } => {
            let receiver = receiver.as_deref().map(ClientId::parse).transpose()?;
            let streams = storage.list_streams(receiver.as_ref()).await?;
            if json {
                return print_json(&json!(streams.iter().map(describe).collect::<Vec<_>>()));
            }
            if streams.is_empty() {
                println!("No Shared Signals streams.");
            }
            for stream in &streams {
                println!(
                    "{}  receiver {}  {:<8} {:<4} last active {}",
                    stream.id,
                    stream.receiver,
                    stream.status,
                    method(stream),
                    when(Some(stream.last_activity_at))
                );
            }
            Ok(())
        }
        StreamCommand::Show { stream_id, json } => {
            let stream = find(storage, &stream_id).await?;
            if json {
                return print_json(&describe(&stream));
            }
            let described = describe(&stream);
            for (name, value) in described.as_object().into_iter().flatten() {
                println!("{name:<22} {value}");
            }
            Ok(())
        }
        StreamCommand::Disable { stream_id, reason } => {
            let stream = find(storage, &stream_id).await?;
            if stream.status == StreamStatus::Disabled {
                println!("Stream {stream_id} was already disabled.");
                return Ok(());
            }
            let now = Utc::now();
            let announcement =
                events.stream_cause(now).stream_updated(&stream.id, StreamStatus::Disabled, reason.as_deref());
            let seed_since = events.seed_since(now);
            storage
                .set_stream_status(
                    &stream.id,
                    StreamStatus::Disabled,
                    reason.as_deref(),
                    now,
                    seed_since,
                    Some(&announcement),
                )
                .await?;
            println!("Stream {stream_id} is disabled; its receiver is told so.");
            Ok(())
        }
    }
}

async fn find(storage: &dyn Storage, stream_id: &str) -> anyhow::Result<Stream> {
    storage.find_stream(stream_id).await?.with_context(|| format!("no stream {stream_id}"))
}

fn method(stream: &Stream) -> &'static str {
    match stream.delivery {
        Delivery::Poll => "poll",
        Delivery::Push { .. } => "push",
    }
}

/// What an operator sees of a stream; the push authorization header never.
fn describe(stream: &Stream) -> serde_json::Value {
    let endpoint = match &stream.delivery {
        Delivery::Poll => None,
        Delivery::Push { endpoint_url, .. } => Some(endpoint_url.as_str()),
    };
    json!({
        "stream_id": stream.id,
        "receiver": stream.receiver.as_str(),
        "status": stream.status.as_str(),
        "status_reason": stream.status_reason,
        "delivery": method(stream),
        "endpoint_url": endpoint,
        "events_delivered": stream.events_delivered().iter().map(|t| t.uri()).collect::<Vec<_>>(),
        "description": stream.description,
        "created_at": stream.created_at.to_rfc3339(),
        "last_activity_at": stream.last_activity_at.to_rfc3339(),
    })
}

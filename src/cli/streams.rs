//! `tessera stream list|show|disable`: the Shared Signals receivers' streams, as an
//! operator sees them. Disabling one is the transmitter's own decision, so the stream's
//! receiver is told first with a stream-updated event (SSF §8.1.5).

use super::{cli_error, print_json, when};
use crate::admin::streams::{self, StreamView};
use crate::signals::Emitter;
use crate::storage::Storage;
use clap::Subcommand;

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
            let streams = streams::list(storage, receiver.as_deref()).await.map_err(cli_error)?;
            if json {
                return print_json(&streams.iter().map(StreamView::from).collect::<Vec<_>>());
            }
            if streams.is_empty() {
                println!("No Shared Signals streams.");
            }
            for stream in &streams {
                let view = StreamView::from(stream);
                println!(
                    "{}  receiver {}  {:<8} {:<4} last active {}",
                    stream.id,
                    stream.receiver,
                    stream.status,
                    view.delivery,
                    when(Some(stream.last_activity_at))
                );
            }
            Ok(())
        }
        StreamCommand::Show { stream_id, json } => {
            let stream = streams::find(storage, &stream_id).await.map_err(cli_error)?;
            if json {
                return print_json(&StreamView::from(&stream));
            }
            let described = serde_json::to_value(StreamView::from(&stream))?;
            for (name, value) in described.as_object().into_iter().flatten() {
                println!("{name:<22} {value}");
            }
            Ok(())
        }
        StreamCommand::Disable { stream_id, reason } => {
            if streams::disable(storage, events, &stream_id, reason.as_deref()).await.map_err(cli_error)? {
                println!("Stream {stream_id} is disabled; its receiver is told so.");
            } else {
                println!("Stream {stream_id} was already disabled.");
            }
            Ok(())
        }
    }
}

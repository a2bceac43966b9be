//! Streaming: the SSE codec, and stateful translators between each format's stream and the
//! common [`StreamEvent`](crate::common::StreamEvent)s.

pub mod decode;
pub mod encode;
pub mod sse;

//! flo2's knowledge of LLM providers: the model catalog, each provider's wire format and
//! endpoints, the common model every format translates through, and the SSE codec.

pub mod catalog;
pub mod common;
pub mod estimate;
pub mod providers;
pub mod reported_usage;
pub mod stream;
pub mod translate;

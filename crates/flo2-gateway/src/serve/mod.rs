//! Choosing and calling targets: what a request needs, which targets qualify and in what order
//! (resolve, routing), and serving it from them (dispatch with fallback, races, one attempt at
//! a time) with typed failures and a structured trace. Also the dashboard's key test, which is
//! one attempt. May call [`crate::upstream`], [`crate::metering`] and [`crate::state`].

pub(crate) mod attempt;
pub(crate) mod dispatch;
pub(crate) mod failure;
pub(crate) mod key_test;
pub(crate) mod needs;
pub(crate) mod race;
pub(crate) mod resolve;
pub(crate) mod routing;
pub(crate) mod trace;

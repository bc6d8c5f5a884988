//! Topics that carry their event type, so publishing the wrong event on a topic does not compile,
//! and the registry can list which topics something publishes on.
//!
//! A topic is still addressed by its name on the wire and in `agents/<name>.toml`; [`EventTopic`]
//! only ties that name to one payload type in code. Plain names still work where no type is
//! declared (tests, ad-hoc tools).

use std::marker::PhantomData;

use crate::protocol::{Payload, Topic};

/// A topic whose events are of type `E`.
pub struct EventTopic<E> {
    name: &'static str,
    event: PhantomData<fn() -> E>,
}

impl<E> EventTopic<E> {
    pub const fn new(name: &'static str) -> Self {
        EventTopic {
            name,
            event: PhantomData,
        }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

// Manual impls: a derive would demand `E: Clone`/`E: Copy`, which the marker does not need.
impl<E> Clone for EventTopic<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for EventTopic<E> {}

impl<E> std::fmt::Debug for EventTopic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// What `publish` takes as the topic for an event of type `E`: a typed topic of that event, or a
/// plain name.
pub trait TopicFor<E>: Into<Topic> {}

impl<E: Payload> From<EventTopic<E>> for Topic {
    fn from(topic: EventTopic<E>) -> Topic {
        Topic::new(topic.name)
    }
}

impl<E: Payload> TopicFor<E> for EventTopic<E> {}
impl<E> TopicFor<E> for Topic {}
impl<E> TopicFor<E> for &str {}
impl<E> TopicFor<E> for String {}

//! A capturing subscriber: every event and span of this thread, structured (target, level,
//! fields, and the fields of the spans it happened in) and as the text a `fmt` subscriber
//! writes at `TRACE`, for the secrets check.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Fields as text: strings as they are, everything else as `Debug` prints it.
pub(crate) type Fields = BTreeMap<String, String>;

/// One event, with the fields of the spans it was emitted in (innermost last wins).
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) target: String,
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) fields: Fields,
    pub(crate) span: Fields,
}

impl Captured {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    pub(crate) fn span_field(&self, name: &str) -> Option<&str> {
        self.span.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Captured>>,
    text: Mutex<Vec<u8>>,
}

/// What was captured on this thread since [`capture`].
#[derive(Clone)]
pub(crate) struct Capture(Arc<Shared>);

impl Capture {
    pub(crate) fn events(&self) -> Vec<Captured> {
        self.0.events.lock().unwrap().clone()
    }

    /// The events on this target.
    pub(crate) fn on(&self, target: &str) -> Vec<Captured> {
        self.events().into_iter().filter(|e| e.target == target).collect()
    }

    /// Forgets what was captured so far.
    pub(crate) fn clear(&self) {
        self.0.events.lock().unwrap().clear();
        self.0.text.lock().unwrap().clear();
    }

    /// Everything captured, as text: the `fmt` output (events with their spans' fields) and
    /// the structured events.
    pub(crate) fn all_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.0.text.lock().unwrap()).into_owned();
        format!("{text}\n{:?}", self.events())
    }
}

/// Captures every event and span of this thread at every level until the guard is dropped.
/// Use it on a current-thread runtime: tasks spawned there run on this thread.
pub(crate) fn capture() -> (Capture, DefaultGuard) {
    let shared = Arc::new(Shared::default());
    let writer = {
        let shared = shared.clone();
        move || TextWriter(shared.clone())
    };
    let subscriber = tracing_subscriber::registry()
        .with(CaptureLayer(shared.clone()))
        .with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false))
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    (Capture(shared), tracing::subscriber::set_default(subscriber))
}

struct TextWriter(Arc<Shared>);

impl Write for TextWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.text.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct CaptureLayer(Arc<Shared>);

/// A span's fields so far, in its extensions.
struct SpanFields(Fields);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Visitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let mut span = Fields::new();
        if let Some(scope) = ctx.event_scope(event) {
            for s in scope.from_root() {
                if let Some(f) = s.extensions().get::<SpanFields>() {
                    span.extend(f.0.clone());
                }
            }
        }
        self.0.events.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message,
            fields,
            span,
        });
    }
}

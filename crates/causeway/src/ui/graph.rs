//! Graphs drawn as inline SVG: the causal chain of an incident and the service map.
//!
//! Layout (ranks, ordering, crossing reduction, edge routing) is `layout-rs`, a Graphviz-like
//! engine; this module only describes nodes and edges and writes the SVG through its own
//! [`RenderBackend`], because the crate's SVG writer uses document-wide ids (`arrow0`, `C0`)
//! that collide when two graphs share a page, inline colours instead of CSS classes, and no
//! way to give a node the attributes tests and scripts rely on (`data-component`,
//! `data-cause`) or a link. It must not compute positions itself.

use std::fmt::Write;

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::StyleAttr;
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
use layout::topo::layout::VisualGraph;
use maud::{Markup, PreEscaped, html};

/// Font size the layout engine sizes boxes with; CSS draws text a little smaller, so labels fit.
const FONT_SIZE: usize = 12;
const LINE_HEIGHT: f64 = 15.0;

/// A box in the graph.
#[derive(Clone, Debug, Default)]
pub struct GraphNode {
    /// Lines of text (the first is the name, drawn bold).
    pub lines: Vec<String>,
    /// CSS classes besides `node`.
    pub class: String,
    /// Extra attributes (`data-*`), values escaped when written.
    pub attributes: Vec<(&'static str, String)>,
    /// Makes the box a link.
    pub link: Option<String>,
    /// Hover text.
    pub title: String,
}

#[derive(Clone, Debug)]
pub struct GraphEdge {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub class: &'static str,
}

pub enum Direction {
    TopDown,
    LeftRight,
}

/// Lays out and draws the graph. `id` must be unique on the page (it prefixes marker ids).
/// Returns `None` for an empty graph or when the layout engine fails on it.
pub fn render(
    id: &str,
    nodes: &[GraphNode],
    edges: &[GraphEdge],
    direction: Direction,
    aria_label: &str,
) -> Option<Markup> {
    if nodes.is_empty() {
        return None;
    }
    let orientation = match direction {
        Direction::TopDown => Orientation::TopToBottom,
        Direction::LeftRight => Orientation::LeftToRight,
    };
    // layout-rs asserts on inputs it does not expect; a graph that cannot be laid out must not
    // take the page (or the server task) down with it.
    let laid_out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut graph = VisualGraph::new(orientation);
        let look = StyleAttr::new(Color::fast("black"), 1, None, 6, FONT_SIZE);
        let handles: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let shape = ShapeKind::new_box(&node.lines.join("\n"));
                let size = get_shape_size(orientation, &shape, FONT_SIZE, false);
                graph.add_node(Element::create_with_properties(
                    shape,
                    look.clone(),
                    orientation,
                    size,
                    index.to_string(),
                ))
            })
            .collect();
        for (index, edge) in edges.iter().enumerate() {
            if edge.from == edge.to || edge.from >= nodes.len() || edge.to >= nodes.len() {
                continue;
            }
            let mut arrow = Arrow::simple_with_properties(&edge.label, index.to_string());
            arrow.look = look.clone();
            graph.add_edge(arrow, handles[edge.from], handles[edge.to]);
        }
        let mut backend = SvgBackend::new(id, nodes, edges);
        graph.do_it(false, false, false, &mut backend);
        backend
    }));
    let backend = match laid_out {
        Ok(backend) => backend,
        Err(_) => {
            tracing::warn!(graph = id, nodes = nodes.len(), "graph layout failed; showing the table only");
            return None;
        }
    };
    Some(backend.finish(id, aria_label))
}

/// Collects draw calls into SVG elements with classes instead of inline colours.
struct SvgBackend<'a> {
    nodes: &'a [GraphNode],
    edges: &'a [GraphEdge],
    marker: String,
    body: String,
    /// A node group is open until its label is drawn (the engine draws box, then text).
    open_node: Option<usize>,
    max: Point,
}

impl<'a> SvgBackend<'a> {
    fn new(id: &str, nodes: &'a [GraphNode], edges: &'a [GraphEdge]) -> SvgBackend<'a> {
        SvgBackend {
            nodes,
            edges,
            marker: format!("{id}-arrow"),
            body: String::new(),
            open_node: None,
            max: Point::new(0.0, 0.0),
        }
    }

    fn grow(&mut self, point: Point) {
        self.max.x = self.max.x.max(point.x);
        self.max.y = self.max.y.max(point.y);
    }

    fn finish(self, id: &str, aria_label: &str) -> Markup {
        let width = (self.max.x + 10.0).ceil();
        let height = (self.max.y + 10.0).ceil();
        let marker = &self.marker;
        html! {
            svg.graph id=(id) xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {height}"))
                width=(width) height=(height) role="img" aria-label=(aria_label) {
                defs {
                    marker id=(marker) markerWidth="10" markerHeight="7" refX="10" refY="3.5" orient="auto" {
                        polygon points="0 0, 10 3.5, 0 7" class="arrowhead" {}
                    }
                }
                (PreEscaped(&self.body))
            }
        }
    }
}

/// Text escaped for an HTML/SVG attribute or text node.
fn escape(text: &str) -> String {
    html! { (text) }.into_string()
}

fn number(value: f64) -> String {
    format!("{:.1}", value)
}

impl RenderBackend for SvgBackend<'_> {
    fn draw_rect(
        &mut self,
        xy: Point,
        size: Point,
        look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        self.grow(Point::new(xy.x + size.x, xy.y + size.y));
        let Some(index) = properties.and_then(|p| p.parse::<usize>().ok()).filter(|i| *i < self.nodes.len()) else {
            return;
        };
        let node = &self.nodes[index];
        let group = html! {
            title { (node.title) }
            rect x=(number(xy.x)) y=(number(xy.y)) width=(number(size.x)) height=(number(size.y)) rx=(look.rounded) {}
        };
        let attributes: String =
            node.attributes.iter().map(|(key, value)| format!(" {key}=\"{}\"", escape(value))).collect();
        if let Some(link) = &node.link {
            let _ = write!(self.body, "<a href=\"{}\">", escape(link));
        }
        let _ = write!(self.body, "<g class=\"node {}\"{attributes}>{}", escape(&node.class), group.into_string());
        self.open_node = Some(index);
    }

    fn draw_line(&mut self, start: Point, stop: Point, _look: &StyleAttr, _properties: Option<String>) {
        self.grow(start);
        self.grow(stop);
        let line = html! { line x1=(number(start.x)) y1=(number(start.y)) x2=(number(stop.x)) y2=(number(stop.y)) {} };
        self.body.push_str(&line.into_string());
    }

    fn draw_circle(&mut self, xy: Point, size: Point, _look: &StyleAttr, _properties: Option<String>) {
        self.grow(Point::new(xy.x + size.x / 2.0, xy.y + size.y / 2.0));
    }

    fn draw_text(&mut self, xy: Point, text: &str, _look: &StyleAttr) {
        let lines: Vec<&str> = text.lines().collect();
        let first_y = xy.y - (lines.len().saturating_sub(1)) as f64 * LINE_HEIGHT / 2.0;
        let class = if self.open_node.is_some() { "label" } else { "edge-label" };
        let markup = html! {
            text x=(number(xy.x)) y=(number(first_y)) class=(class) {
                @for (index, line) in lines.iter().enumerate() {
                    tspan x=(number(xy.x)) dy=(if index == 0 { "0".to_string() } else { LINE_HEIGHT.to_string() })
                        class=(if index == 0 { "name" } else { "detail" }) { (line) }
                }
            }
        };
        self.body.push_str(&markup.into_string());
        if let Some(index) = self.open_node.take() {
            self.body.push_str("</g>");
            if self.nodes[index].link.is_some() {
                self.body.push_str("</a>");
            }
        }
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        if path.len() < 2 {
            return;
        }
        for (point, control) in path {
            self.grow(*point);
            self.grow(*control);
        }
        // The engine's curve: a cubic Bézier out of the first point, smooth continuations after.
        let mut d = format!(
            "M {} {} C {} {}, {} {}, {} {}",
            number(path[0].0.x),
            number(path[0].0.y),
            number(path[0].1.x),
            number(path[0].1.y),
            number(path[1].0.x),
            number(path[1].0.y),
            number(path[1].1.x),
            number(path[1].1.y)
        );
        for (point, control) in &path[2..] {
            let _ =
                write!(d, " S {} {}, {} {}", number(point.x), number(point.y), number(control.x), number(control.y));
        }
        let edge = properties.and_then(|p| p.parse::<usize>().ok()).and_then(|index| self.edges.get(index));
        let class = format!("edge {}{}", edge.map_or("", |edge| edge.class), if dashed { " dashed" } else { "" });
        let marker = format!("url(#{})", self.marker);
        let markup = html! {
            path class=(class) d=(d) marker-end=[head.1.then_some(&marker)] {}
        };
        self.body.push_str(&markup.into_string());
    }

    fn create_clip(&mut self, _xy: Point, _size: Point, _rounded_px: usize) -> ClipHandle {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_lays_out_with_labels_attributes_and_unique_markers() {
        let nodes = vec![
            GraphNode { lines: vec!["frontend".into(), "web".into()], class: "entry".into(), ..GraphNode::default() },
            GraphNode {
                lines: vec!["postgresql/payments".into(), "owner dba".into()],
                class: "cause".into(),
                attributes: vec![("data-cause", "true".into()), ("data-component", "postgresql/payments".into())],
                link: Some("/?service=postgresql/payments".into()),
                ..GraphNode::default()
            },
        ];
        let edges = vec![GraphEdge { from: 0, to: 1, label: "96%".into(), class: "blame" }];
        let svg = render("g1", &nodes, &edges, Direction::TopDown, "causal chain").expect("laid out").into_string();
        assert!(svg.starts_with("<svg class=\"graph\" id=\"g1\""), "{svg}");
        assert!(svg.contains("data-cause=\"true\" data-component=\"postgresql/payments\""), "{svg}");
        assert!(svg.contains("<a href=\"/?service=postgresql/payments\">"), "{svg}");
        assert!(svg.contains(">96%</tspan>"), "{svg}");
        assert!(svg.contains("marker-end=\"url(#g1-arrow)\""), "{svg}");
        assert_eq!(svg.matches("<g class=\"node").count(), 2);
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
        assert!(render("g2", &[], &[], Direction::TopDown, "empty").is_none());
    }

    #[test]
    fn labels_are_escaped() {
        let nodes = vec![GraphNode { lines: vec!["<script>".into()], title: "a\"b".into(), ..GraphNode::default() }];
        let svg = render("g3", &nodes, &[], Direction::LeftRight, "x").expect("laid out").into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }
}

"""The app: page setup, navigation over one `st.Page` per page module, and the store check.

Navigation is `st.navigation` (each page has its own URL path: /history, /drill-down, ...) drawn
as the sidebar radio "Page" the dashboard has always had: picking an entry switches page with
`st.switch_page`, and the radio follows the page the URL (or the browser's back button) opened.
Links of the form ?page=history still open that page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from bench.dashboard import drilldown, history, leaderboard, load, small_enough
from bench.dashboard.reads import Store, results_dir


@dataclass(frozen=True)
class PageDef:
    title: str
    slug: str  # the page's URL path
    render: Callable[[Store], None]
    needs_runs: bool = True  # False: the page reads other files (load sweeps), so it runs without runs tables


PAGES = (
    PageDef("Leaderboard", "leaderboard", leaderboard.render),
    PageDef("Is a small model enough?", "small-enough", small_enough.render),
    PageDef("Drill-down", "drill-down", drilldown.render),
    PageDef("History", "history", history.render),
    PageDef("Load", "load", load.render, needs_runs=False),
)
_PICKED = "_page_picked"  # set by the radio's callback: the page to switch to on this rerun


def _picked() -> None:
    st.session_state[_PICKED] = st.session_state["page"]


def _body(render: Callable[[Store], None], s: Store | None) -> Callable[[], None]:
    def body() -> None:
        if s is not None:  # main() runs a page only once the store is there
            render(s)

    return body


def navigate(s: Store | None) -> StreamlitPage:
    """The page this rerun shows (not yet run), after drawing the sidebar's page radio."""
    pages = [
        st.Page(_body(p.render, s), title=p.title, url_path=p.slug, default=i == 0)
        for i, p in enumerate(PAGES)
    ]
    current = st.navigation(pages, position="hidden")
    titles = [p.title for p in PAGES]
    asked = st.session_state.pop(_PICKED, None)
    legacy = st.query_params.get("page")  # ?page=history, the links of the single-script app
    if asked is None and legacy in (slugs := [p.slug for p in PAGES]):
        asked = titles[slugs.index(legacy)]
    if asked is not None and asked != current.title:
        st.switch_page(pages[titles.index(asked)])
    st.session_state["page"] = current.title  # the radio shows the page that runs
    st.sidebar.radio("Page", titles, key="page", on_change=_picked)
    return current


def main() -> None:
    st.set_page_config(page_title="bench dashboard", layout="wide")
    root = results_dir()
    st.sidebar.title("bench")
    s = Store(root) if root.is_dir() else None
    page = navigate(s)
    if s is None:
        st.error(f"Results directory `{root}` does not exist.")
        return
    if s.runs.empty and next(p.needs_runs for p in PAGES if p.title == page.title):
        st.info(f"No runs under `{root}` yet: `bench run suites/smoke.yaml -o {root}`.")
        return
    if not s.runs.empty:
        n = s.runs["run_id"].nunique()
        st.sidebar.caption(f"`{root}` · {n} run{'s' if n != 1 else ''}")
    page.run()

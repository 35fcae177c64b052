"""A Streamlit page on top of the recommendation service, for people to look at its answers.

`recs ui` (recs.cli.ui) runs `streamlit run ui/app.py`; the page talks to the service only
through the client library. Everything the page decides that can be tested without
Streamlit lives in plain modules: `settings` (what `recs ui` hands the page), `logic`
(query parameters, overlap, tables, errors in words), `history` (a user's recent history
from the prepared dataset) and `evaluation` (metrics of an evaluation JSON).
"""

from pathlib import Path

APP_PATH = Path(__file__).with_name("app.py")  # what `streamlit run` is given

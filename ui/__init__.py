"""A Streamlit page on top of the recommendation service, for people to look at its answers.

`recs ui` (ui/cli.py) runs `streamlit run ui/app.py`; the page talks to the service only
through the client library. Everything the page decides that can be tested without
Streamlit lives in plain modules: `settings` (what `recs ui` hands the page), `logic`
(query parameters, overlap, tables, errors in words), `history` (a user's recent history
from the prepared dataset) and `evaluation` (metrics of an evaluation JSON).
"""

"""The desk in a browser: server-rendered pages, an Atom feed and a small JSON API over the
database the fleet writes (read-only: the web app never writes a record)."""

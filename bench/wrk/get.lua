-- A plain GET (the link redirect).
wrk.method = "GET"

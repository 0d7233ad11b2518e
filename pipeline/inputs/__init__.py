"""Other teams' topics: validated, mapped to our records and fed in at the raw or the articles stage."""

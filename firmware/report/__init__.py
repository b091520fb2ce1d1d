"""What a reviewer reads about a recording: plots (and reports) of features and cues."""

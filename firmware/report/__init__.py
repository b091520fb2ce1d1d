"""What a reviewer reads about a recording: what `deskcue analyze` gathers (`call`), the plot
(`plot`) and the self-contained HTML call report (`html`)."""

"""threadrec streams: Faust app, topics, agents, CLI and the embedded broker."""

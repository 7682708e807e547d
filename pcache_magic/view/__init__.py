"""How a session looks: the HTML renderers, the panel widget and its stylesheet."""

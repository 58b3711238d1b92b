just text, no actions

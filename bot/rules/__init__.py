"""The rules engine: fields, operators, conditions, actions, templates, and the pure planner."""

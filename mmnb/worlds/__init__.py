"""The data model and experiment of each chapter, one module per chapter ("world")."""

"""The one journalled step engine: steps with undo, the journal, its records, fault points."""

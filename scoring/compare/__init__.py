"""Champion vs challenger: `scoring compare` (model_comparison) and `scoring promote`."""

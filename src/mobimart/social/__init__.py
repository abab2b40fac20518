"""Reviews, product questions and answers, and chat between shoppers and shops."""
